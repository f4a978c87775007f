package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
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
// sends a Resync) and etcd restarts or lost connections (the client
// reconnects and the watch resumes after the last revision seen, losing
// nothing). The channel is closed when ctx ends.
func (s *Store) Watch(ctx context.Context, fromRev int64) <-chan Change {
	out := make(chan Change)
	w := &watcher{store: s, out: out}
	go w.run(ctx, fromRev)
	return out
}

type watcher struct {
	store *Store
	out   chan<- Change
	// state is the newest snapshot; seen the newest revision whose events
	// have all been applied (may be ahead of state.Rev when events outside
	// the snapshot, or progress notifications, arrived).
	state   *Snapshot
	seen    int64
	pending *Change
	backoff time.Duration
}

func (w *watcher) run(ctx context.Context, fromRev int64) {
	defer close(w.out)
	if !w.start(ctx, fromRev) {
		return
	}
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			w.store.log.Info("watched revision was compacted; reloading the configuration", "rev", w.seen)
			if !w.reload(ctx) {
				return
			}
			continue
		}
		level := slog.LevelWarn
		if errors.Is(err, errWatchClosed) {
			// The client closes a new watch that lands on a gRPC stream that
			// is shutting down (the previous watch just ended); routine.
			level = slog.LevelDebug
		}
		w.store.log.Log(ctx, level, "configuration watch interrupted; resuming", "rev", w.seen, "err", err)
		if !w.pause(ctx) {
			return
		}
	}
}

// start loads the base state: at fromRev when given, so that the first
// Change reports what happened after it.
func (w *watcher) start(ctx context.Context, fromRev int64) bool {
	if fromRev <= 0 {
		return w.reload(ctx)
	}
	for {
		snap, err := w.store.loadAt(ctx, fromRev)
		if err == nil {
			w.state, w.seen = snap, snap.Rev
			return true
		}
		if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
			// Too old to replay, or not a revision this cluster has seen
			// (etcd was restored from a backup): start from the current state.
			return w.reload(ctx)
		}
		w.store.log.Warn("cannot load the configuration to watch from", "rev", fromRev, "err", err)
		if !w.pause(ctx) {
			return false
		}
	}
}

// reload loads the current state and queues it as a Resync.
func (w *watcher) reload(ctx context.Context) bool {
	for {
		snap, err := w.store.loadAt(ctx, 0)
		if err == nil {
			w.state, w.seen = snap, snap.Rev
			w.pending = &Change{Snapshot: snap, Resync: true}
			return true
		}
		w.store.log.Warn("cannot load the configuration", "err", err)
		if !w.pause(ctx) {
			return false
		}
	}
}

// follow watches from seen+1 until the watch ends, returning why.
func (w *watcher) follow(ctx context.Context) error {
	// RequireLeader: a member cut off from its cluster ends the watch
	// instead of silently delivering nothing.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.store.cli.Watch(wctx, w.store.prefix,
		clientv3.WithPrefix(), clientv3.WithRev(w.seen+1), clientv3.WithProgressNotify())
	for {
		var send chan<- Change
		var next Change
		if w.pending != nil {
			send, next = w.out, *w.pending
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case send <- next:
			w.pending = nil
		case wr, ok := <-wch:
			if !ok {
				return errWatchClosed
			}
			if wr.CompactRevision != 0 {
				return rpctypes.ErrCompacted
			}
			if err := wr.Err(); err != nil {
				return err
			}
			w.backoff = 0
			if wr.IsProgressNotify() {
				// Everything up to the header revision has been delivered.
				w.seen = max(w.seen, wr.Header.Revision)
				continue
			}
			w.apply(wr.Events)
		}
	}
}

// apply folds one watch response into a new snapshot. The response holds
// whole revisions, so the result is the exact state at its last event.
func (w *watcher) apply(events []*clientv3.Event) {
	var next *Snapshot
	var keys []Key
	for _, ev := range events {
		w.seen = max(w.seen, ev.Kv.ModRevision)
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
				w.store.log.Warn("undecodable key left out of the configuration", "key", string(k), "reason", reason)
			}
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if next == nil {
		return
	}
	next.Rev = w.seen
	w.state = next
	if next.SchemaVersion > SchemaVersion {
		w.store.log.Error("cluster schema is newer than this build; changes are not applied",
			"schema", next.SchemaVersion, "supported", SchemaVersion)
		return
	}
	if w.pending == nil {
		w.pending = &Change{Snapshot: next, Keys: keys}
		return
	}
	w.pending.Snapshot = next
	if !w.pending.Resync {
		for _, k := range keys {
			if !slices.Contains(w.pending.Keys, k) {
				w.pending.Keys = append(w.pending.Keys, k)
			}
		}
	}
}

// pause waits before a retry, still handing the pending change to the
// reader meanwhile. It returns false when ctx ends.
func (w *watcher) pause(ctx context.Context) bool {
	w.backoff = min(max(2*w.backoff, 100*time.Millisecond), 5*time.Second)
	timer := time.NewTimer(w.backoff/2 + rand.N(w.backoff/2))
	defer timer.Stop()
	for {
		var send chan<- Change
		var next Change
		if w.pending != nil {
			send, next = w.out, *w.pending
		}
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case send <- next:
			w.pending = nil
		}
	}
}

// String describes a change for logs.
func (c Change) String() string {
	if c.Resync {
		return fmt.Sprintf("resync at revision %d", c.Snapshot.Rev)
	}
	return fmt.Sprintf("%d keys changed at revision %d", len(c.Keys), c.Snapshot.Rev)
}
