package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
)

// Change is one notification from Watch.
type Change struct {
	// Snapshot is the whole state after the change. It is shared and
	// read-only.
	Snapshot *Snapshot
	// Keys are the keys that changed since the previous Change (or since
	// fromRev for the first one), in the order they changed. Nil when
	// Resync is set.
	Keys []Key
	// Resync reports that the watcher loaded the whole state instead of
	// following changes: at start when fromRev is 0, and when the revisions
	// it needed were compacted away. Compare the whole snapshot with what
	// was applied before; do not rely on Keys.
	Resync bool
}

// errWatchClosed: the etcd client ended a watch without an error (its
// context ended or the client was closed).
var errWatchClosed = errors.New("watch channel closed")

// Watch follows the cluster state from fromRev (a revision the caller has
// already applied, typically from Load; 0 starts with a full Resync of the
// current state) and delivers a Change for every revision that touches
// the configuration, ownership or liveness (reservation state is left to
// GetPR). A reader that falls behind gets changes merged: it always
// receives the newest snapshot and every changed key, never a stale
// intermediate state.
//
// The watch survives compaction (it reloads at the current revision and
// sends a Resync) and etcd restarts or lost connections (the watch resumes
// after the last revision seen, losing nothing); etcdwatch.Run is the
// loop. The channel is closed when ctx ends.
func (s *Store) Watch(ctx context.Context, fromRev int64) <-chan Change {
	out := make(chan Change)
	w := &watcher{store: s, fromRev: fromRev, changes: make(chan Change)}
	go w.run(ctx, out)
	return out
}

// watcher builds snapshots on the etcdwatch goroutine and hands each
// Change to the delivering goroutine, which merges what the reader has not
// taken yet.
type watcher struct {
	store   *Store
	fromRev int64
	// state is the newest snapshot; only the etcdwatch goroutine uses it.
	state   *Snapshot
	changes chan Change
}

func (w *watcher) run(ctx context.Context, out chan<- Change) {
	defer close(out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		deliver(ctx, w.changes, out)
	}()
	_ = etcdwatch.Run(ctx, w.store.cli, 0, etcdwatch.Options{
		Prefix:         w.store.prefix,
		Load:           w.load,
		Apply:          w.apply,
		ProgressNotify: true,
		Logger:         w.store.log,
		Name:           "configuration",
	})
	<-done
}

// load reads the base state. The first time, with fromRev given, it loads
// the state at fromRev so that the first Change reports what happened
// after it; otherwise (and when fromRev is gone) it loads the current state
// and queues it as a Resync.
func (w *watcher) load(ctx context.Context) (int64, error) {
	if w.state == nil && w.fromRev > 0 {
		snap, err := w.store.loadAt(ctx, w.fromRev)
		switch {
		case err == nil:
			w.state = snap
			return snap.Rev, nil
		case errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev):
			// Too old to replay, or not a revision this cluster has seen
			// (etcd was restored from a backup): start from the current state.
		default:
			return 0, err
		}
	}
	snap, err := w.store.loadAt(ctx, 0)
	if err != nil {
		return 0, err
	}
	w.state = snap
	return snap.Rev, w.send(ctx, Change{Snapshot: snap, Resync: true})
}

// apply folds one watch response into a new snapshot. The response holds
// whole revisions, so the result is the exact state at its last event.
func (w *watcher) apply(ctx context.Context, b etcdwatch.Batch) error {
	var next *Snapshot
	var keys []Key
	for _, ev := range b.Events {
		k := w.store.rel(ev.Kv.Key)
		if kind := parseKey(k).kind; kind == kindUnknown || kind == kindPR {
			continue
		}
		if next == nil {
			next = w.state.clone() // the old snapshot may still be in a reader's hands
		}
		if ev.Type == mvccpb.DELETE {
			next.deleteKV(k)
		} else {
			next.applyKV(k, ev.Kv.Value, ev.Kv.ModRevision)
			if reason, bad := next.Damaged[k]; bad {
				logDamaged(w.store.log, k, reason)
			}
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if next == nil {
		return nil
	}
	next.Rev = b.Rev
	w.state = next
	if next.SchemaVersion > SchemaVersion {
		w.store.log.Error("cluster schema is newer than this build; changes are not applied",
			"schema", next.SchemaVersion, "supported", SchemaVersion)
		return nil
	}
	return w.send(ctx, Change{Snapshot: next, Keys: keys})
}

// send hands a change to the delivering goroutine, which always takes it
// at once unless ctx has ended.
func (w *watcher) send(ctx context.Context, c Change) error {
	select {
	case w.changes <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliver offers the reader the pending change, merging every newer one
// into it until the reader takes it.
func deliver(ctx context.Context, in <-chan Change, out chan<- Change) {
	var pending *Change
	for {
		var send chan<- Change
		var next Change
		if pending != nil {
			send, next = out, *pending
		}
		select {
		case <-ctx.Done():
			return
		case send <- next:
			pending = nil
		case c := <-in:
			pending = merge(pending, c)
		}
	}
}

// merge folds c into the change the reader has not taken yet: the newest
// snapshot, every changed key, and Resync when either is one.
func merge(pending *Change, c Change) *Change {
	if pending == nil || c.Resync {
		return &c
	}
	pending.Snapshot = c.Snapshot
	if !pending.Resync {
		for _, k := range c.Keys {
			if !slices.Contains(pending.Keys, k) {
				pending.Keys = append(pending.Keys, k)
			}
		}
	}
	return pending
}

// String describes a change for logs.
func (c Change) String() string {
	if c.Resync {
		return fmt.Sprintf("resync at revision %d", c.Snapshot.Rev)
	}
	return fmt.Sprintf("%d keys changed at revision %d", len(c.Keys), c.Snapshot.Rev)
}
