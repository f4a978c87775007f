package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
)

// keyPrefix is where the records live, relative to the cluster prefix.
const keyPrefix = "peers/"

// Record is one gateway's published state.
type Record struct {
	Gateway string `json:"gateway"`
	// Client is the gateway's Ceph client address ("ip:port/nonce"); empty
	// until it has connected.
	Client string `json:"client,omitempty"`
	// Applied is the newest etcd revision of shared logical unit state
	// (reservations, resets) this gateway has applied.
	Applied int64 `json:"applied"`
	// Status is what the gateway reports about itself to the management
	// plane (package node writes and reads it; peer does not look inside).
	Status json.RawMessage `json:"status,omitempty"`
}

// Prefix is where the records of the cluster under prefix (the cluster
// store's prefix) live.
func Prefix(prefix string) string { return prefix + keyPrefix }

// Directory publishes this gateway's record and reads the others'. It is
// safe for concurrent use.
type Directory struct {
	cli    *clientv3.Client
	prefix string // cluster prefix + keyPrefix
	log    *slog.Logger

	mu    sync.Mutex // serialises writes of the record
	rec   Record
	lease clientv3.LeaseID
	// dirty: the last write failed, so etcd may hold an older record.
	dirty bool
}

// New returns the directory of the cluster under prefix (the cluster
// store's prefix) for gateway.
func New(cli *clientv3.Client, prefix, gateway string, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	return &Directory{
		cli:    cli,
		prefix: Prefix(prefix),
		log:    log.With("component", "peer"),
		rec:    Record{Gateway: gateway},
	}
}

// Key is the etcd key of gateway's record.
func (d *Directory) Key(gateway string) string { return d.prefix + gateway }

// Publish binds the record to lease (the gateway's liveness lease) and
// writes it. Call it after every registration.
func (d *Directory) Publish(ctx context.Context, lease clientv3.LeaseID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lease = lease
	return d.putLocked(ctx)
}

// SetClient records the gateway's current Ceph client address.
func (d *Directory) SetClient(ctx context.Context, addr string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec.Client == addr && !d.dirty {
		return nil
	}
	d.rec.Client = addr
	return d.putLocked(ctx)
}

// SetStatus records the gateway's status document; it is written when it
// differs from the last one written.
func (d *Directory) SetStatus(ctx context.Context, status json.RawMessage) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if bytes.Equal(d.rec.Status, status) && !d.dirty {
		return nil
	}
	d.rec.Status = bytes.Clone(status)
	return d.putLocked(ctx)
}

// SetApplied records that shared state up to revision rev is applied.
// Other gateways wait for it in WaitApplied, so it is written before it
// returns.
func (d *Directory) SetApplied(ctx context.Context, rev int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rev <= d.rec.Applied && !d.dirty {
		return nil
	}
	d.rec.Applied = max(d.rec.Applied, rev)
	return d.putLocked(ctx)
}

// putLocked writes the record with the lease; without a lease (not
// registered yet) it only keeps the value for Publish. d.mu is held.
func (d *Directory) putLocked(ctx context.Context) error {
	if d.lease == 0 {
		return nil
	}
	val, err := json.Marshal(d.rec)
	if err != nil {
		return err
	}
	if _, err := d.cli.Put(ctx, d.Key(d.rec.Gateway), string(val), clientv3.WithLease(d.lease)); err != nil {
		d.dirty = true
		return fmt.Errorf("peer: publish %s: %w", d.rec.Gateway, err)
	}
	d.dirty = false
	return nil
}

// Records returns the records of every live gateway, by name, and the
// revision they were read at.
func (d *Directory) Records(ctx context.Context) (map[string]Record, int64, error) {
	resp, err := d.cli.Get(ctx, d.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("peer: list: %w", err)
	}
	out := make(map[string]Record, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if r, ok := d.decode(kv); ok {
			out[r.Gateway] = r
		}
	}
	return out, resp.Header.Revision, nil
}

func (d *Directory) decode(kv *mvccpb.KeyValue) (Record, bool) {
	name := strings.TrimPrefix(string(kv.Key), d.prefix)
	var r Record
	if err := json.Unmarshal(kv.Value, &r); err != nil || name == "" {
		d.log.Warn("undecodable peer record", "key", string(kv.Key))
		return Record{}, false
	}
	r.Gateway = name
	return r, true
}

// ErrNotApplied reports gateways that did not confirm a change before the
// caller's deadline.
var ErrNotApplied = errors.New("peer: not applied by every gateway")

// NotAppliedError names the gateways that did not confirm a revision.
type NotAppliedError struct {
	Rev    int64
	Behind []string
	Err    error // why the wait ended
}

func (e *NotAppliedError) Error() string {
	return fmt.Sprintf("%v: revision %d not confirmed by %s: %v", ErrNotApplied, e.Rev, strings.Join(e.Behind, ", "), e.Err)
}

func (e *NotAppliedError) Is(target error) bool { return target == ErrNotApplied }

// WaitApplied blocks until each of gateways has published that it applied
// revision rev, or until ctx ends; then it returns a *NotAppliedError
// naming the gateways still behind. A gateway without a record, or whose
// record goes with its lease meanwhile, stays behind: it has not applied
// the change, and whoever waits must make sure it cannot act on the old
// state (fence it). The watch on the records resumes after lost
// connections and rereads them after compaction (etcdwatch.Run).
func (d *Directory) WaitApplied(ctx context.Context, rev int64, gateways []string) error {
	behind := map[string]bool{}
	for _, g := range gateways {
		behind[g] = true
	}
	if len(behind) == 0 {
		return nil
	}
	load := func(ctx context.Context) (int64, error) {
		recs, at, err := d.Records(ctx)
		if err != nil {
			return 0, err
		}
		for name, r := range recs {
			if r.Applied >= rev {
				delete(behind, name)
			}
		}
		if len(behind) == 0 {
			return at, etcdwatch.ErrStop
		}
		return at, nil
	}
	apply := func(_ context.Context, b etcdwatch.Batch) error {
		for _, ev := range b.Events {
			if ev.Type == mvccpb.DELETE {
				continue
			}
			if r, ok := d.decode(ev.Kv); ok && r.Applied >= rev {
				delete(behind, r.Gateway)
			}
		}
		if len(behind) == 0 {
			return etcdwatch.ErrStop
		}
		return nil
	}
	err := etcdwatch.Run(ctx, d.cli, 0, etcdwatch.Options{
		Prefix: d.prefix, Load: load, Apply: apply, Logger: d.log, Name: "peer records",
	})
	if err == nil || len(behind) == 0 {
		return nil
	}
	return &NotAppliedError{Rev: rev, Behind: slices.Sorted(maps.Keys(behind)), Err: err}
}
