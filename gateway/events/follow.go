package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
)

// Options say what to follow and where the events go.
type Options struct {
	// Prefix is the cluster prefix (cluster.Store.Prefix).
	Prefix string
	// Since is the revision the reader has seen: events after it are
	// sent. 0 starts at the current revision.
	Since int64
	// Start is called first, with the revision the stream starts after:
	// Since, or the current revision.
	Start func(rev int64) error
	// Send receives the events of each revision in revision order (never
	// an empty list), and the Compacted event when the history after the
	// last revision sent is gone. An error from Start or Send ends Follow,
	// which returns it.
	Send   func(evs []Event) error
	Logger *slog.Logger
}

// Follow watches the cluster under o.Prefix and sends its events until ctx
// ends (it then returns ctx.Err()) or Start or Send fails. It resumes by
// itself after lost connections and etcd restarts (etcdwatch.Run).
func Follow(ctx context.Context, cli *clientv3.Client, o Options) error {
	f := &follower{cli: cli, o: o, last: o.Since}
	if f.o.Logger == nil {
		f.o.Logger = slog.Default()
	}
	from := int64(0)
	if o.Since > 0 {
		// The owners at Since, so that a move reports where it came from.
		switch err := f.loadOwners(ctx, o.Since); {
		case errors.Is(err, rpctypes.ErrCompacted), errors.Is(err, rpctypes.ErrFutureRev):
			// Load (from 0) reports the compaction. A revision etcd has not
			// reached (it was restored from a backup) is as unknown.
		case err != nil:
			return err
		default:
			if err := o.Start(o.Since); err != nil {
				return err
			}
			f.started = true
			from = o.Since
		}
	}
	err := etcdwatch.Run(ctx, cli, from, etcdwatch.Options{
		Prefix: o.Prefix,
		Load:   f.load,
		Apply:  f.apply,
		Logger: f.o.Logger,
		Name:   "event stream",
	})
	if f.err != nil {
		return f.err
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

type follower struct {
	cli *clientv3.Client
	o   Options
	// owners maps each disk to its owner gateway, as of the last revision
	// sent.
	owners  map[string]string
	started bool
	// last is the newest revision sent (or Since).
	last int64
	// err is Start's or Send's error, which stops the watch.
	err error
}

// loadOwners reads the owners at rev.
func (f *follower) loadOwners(ctx context.Context, rev int64) error {
	_, err := f.readOwners(ctx, rev)
	return err
}

// readOwners reads the owners at rev (0: the current revision) and
// returns the revision read.
func (f *follower) readOwners(ctx context.Context, rev int64) (int64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := f.cli.Get(ctx, f.o.Prefix+string(cluster.OwnerKey("")), opts...)
	if err != nil {
		return 0, fmt.Errorf("events: read owners: %w", err)
	}
	f.owners = map[string]string{}
	for _, kv := range resp.Kvs {
		var o cluster.Owner
		disk := strings.TrimPrefix(string(kv.Key), f.o.Prefix+string(cluster.OwnerKey("")))
		if json.Unmarshal(kv.Value, &o) == nil {
			f.owners[disk] = o.Gateway
		}
	}
	if rev == 0 {
		rev = resp.Header.Revision
	}
	return rev, nil
}

// load starts the stream at the current revision: at the start when no
// revision was given, and after a compaction, which it reports.
func (f *follower) load(ctx context.Context) (int64, error) {
	rev, err := f.readOwners(ctx, 0)
	if err != nil {
		return 0, err
	}
	if !f.started {
		f.started = true
		err = f.o.Start(rev)
		if err == nil && f.o.Since > 0 {
			// The revision asked for was compacted before the watch began.
			err = f.o.Send([]Event{{Type: TypeCompacted, Revision: rev, Since: f.o.Since}})
		}
	} else {
		err = f.o.Send([]Event{{Type: TypeCompacted, Revision: rev, Since: f.last}})
	}
	f.last = rev
	if err != nil {
		f.err = err
		return rev, etcdwatch.ErrStop
	}
	return rev, nil
}

// apply sends the events of a watch response, one revision at a time.
func (f *follower) apply(_ context.Context, b etcdwatch.Batch) error {
	var evs []Event
	rev := int64(0)
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		err := f.o.Send(evs)
		evs = nil
		return err
	}
	for _, ev := range b.Events {
		if ev.Kv.ModRevision != rev {
			if err := flush(); err != nil {
				f.err = err
				return etcdwatch.ErrStop
			}
			rev = ev.Kv.ModRevision
		}
		if e, ok := f.decode(ev); ok {
			evs = append(evs, e)
		}
	}
	if err := flush(); err != nil {
		f.err = err
		return etcdwatch.ErrStop
	}
	f.last = b.Rev
	return nil
}

// decode makes the event of one etcd event; false for keys that are not
// reported (reservations, status records, counters, tokens, the audit
// trail) and for what is not an event (a fencing record expiring).
func (f *follower) decode(ev *clientv3.Event) (Event, bool) {
	rel := strings.TrimPrefix(string(ev.Kv.Key), f.o.Prefix)
	put := ev.Type == mvccpb.PUT
	out := Event{Revision: ev.Kv.ModRevision}
	if disk, ok := strings.CutPrefix(rel, FencePrefix); ok {
		var fr Fence
		if !put || json.Unmarshal(ev.Kv.Value, &fr) != nil {
			return Event{}, false
		}
		t := fr.Time
		out.Type, out.Disk, out.Gateway, out.From, out.Epoch = TypeFence, disk, fr.Gateway, fr.From, fr.Epoch
		out.Clients, out.Reason, out.Error, out.Time = fr.Clients, fr.Reason, fr.Error, &t
		return out, true
	}
	info, ok := cluster.DescribeKey(cluster.Key(rel))
	if !ok {
		return Event{}, false
	}
	switch {
	case info.Config:
		out.Type, out.Kind, out.Key = TypeConfig, info.Kind, rel
		out.Target, out.Name = info.Target, info.Name
		if info.Kind == cluster.KindLUN {
			id := info.LUN
			out.LUN = &id
		}
		out.Op = OpDelete
		if put {
			out.Op = OpPut
			out.Value = json.RawMessage(audit.MaskSecrets(ev.Kv.Value))
		}
		return out, true
	case info.Kind == cluster.KindOwner:
		from := f.owners[info.Name]
		if !put {
			delete(f.owners, info.Name) // the disk was deleted: its config event says so
			return Event{}, false
		}
		var o cluster.Owner
		if json.Unmarshal(ev.Kv.Value, &o) != nil {
			return Event{}, false
		}
		f.owners[info.Name] = o.Gateway
		out.Type, out.Disk, out.From, out.To, out.Epoch = TypeOwner, info.Name, from, o.Gateway, o.Epoch
		return out, true
	case info.Kind == cluster.KindLive:
		out.Type, out.Gateway = TypeGateway, info.Name
		if !put {
			out.Op = OpLeave
			return out, true
		}
		if !ev.IsCreate() {
			return Event{}, false
		}
		out.Op = OpJoin
		var l cluster.Live
		if json.Unmarshal(ev.Kv.Value, &l) == nil && !l.Since.IsZero() {
			t := l.Since.UTC()
			out.Time = &t
		}
		return out, true
	}
	return Event{}, false
}
