// Package etcdwatch follows a key prefix in etcd from a revision: the one
// watch-and-resume loop of the gateway, used by the configuration watch,
// the reservation hub and the peer directory.
//
// Run loads a base state through the caller's Load, watches from the
// revision after it with RequireLeader (a member cut off from its cluster
// ends the watch instead of silently delivering nothing), hands every
// watch response to the caller's Apply, and resumes after the last
// revision seen when the watch ends for any reason: a lost connection, an
// etcd restart, a leader loss. When the revisions it needs were compacted
// away it cannot resume, so it calls Load again and continues from there.
package etcdwatch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Batch is the events of one watch response: whole revisions, in order.
type Batch struct {
	Events []*clientv3.Event
	// Rev is the revision the watch has reached: every event up to it has
	// been delivered. At least the ModRevision of the last event; beyond it
	// when progress notifications arrived in between.
	Rev int64
}

// ErrStop, returned by Load or Apply, ends Run, which then returns nil.
var ErrStop = errors.New("etcdwatch: stop")

// Options say what to watch and what to do with it.
type Options struct {
	// Prefix is the key prefix watched.
	Prefix string
	// Load reads the state the watch follows and returns the revision it
	// read at. Run calls it first when from is 0, and again whenever the
	// revisions after the last one seen were compacted: the caller replaces
	// its whole state with what it read (deletions included, as no event
	// reports them). Errors other than ErrStop are logged and retried with
	// backoff.
	Load func(ctx context.Context) (int64, error)
	// Apply receives each watch response that carries events. An error
	// ends Run and is returned (nil for ErrStop).
	Apply func(ctx context.Context, b Batch) error
	// ProgressNotify asks etcd for progress notifications on a quiet
	// prefix, so that Batch.Rev (and the resume point) keeps up with the
	// cluster's revision.
	ProgressNotify bool
	// Logger receives the interruptions; Name says what is watched in its
	// messages ("configuration").
	Logger *slog.Logger
	Name   string
}

// Backoff bounds between retries.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// errClosed: the client ended a watch without an error (the client was
// closed, or a new watch landed on a gRPC stream that is shutting down).
var errClosed = errors.New("watch channel closed")

// Run follows o.Prefix from revision from (one the caller has already
// applied; 0 calls Load first) until ctx ends or Load or Apply stops it.
// It returns ctx.Err(), Apply's error, or nil after ErrStop.
func Run(ctx context.Context, w clientv3.Watcher, from int64, o Options) error {
	r := &runner{w: w, o: o, log: o.Logger}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.o.Name == "" {
		r.o.Name = o.Prefix
	}
	err := r.run(ctx, from)
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

type runner struct {
	w       clientv3.Watcher
	o       Options
	log     *slog.Logger
	backoff time.Duration
}

// stopError carries an error from Load or Apply out of the loop.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

func (r *runner) run(ctx context.Context, rev int64) error {
	reload := rev <= 0
	for {
		if reload {
			var err error
			if rev, err = r.load(ctx); err != nil {
				return err
			}
			reload = false
		}
		next, err := r.follow(ctx, rev)
		rev = next
		var stop *stopError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &stop):
			return stop.err
		case errors.Is(err, rpctypes.ErrCompacted):
			r.log.Info("watched "+r.o.Name+" revision was compacted; reloading", "rev", rev)
			reload = true
			continue
		case errors.Is(err, errClosed):
			r.log.Debug(r.o.Name+" watch closed; resuming", "rev", rev)
		default:
			r.log.Warn(r.o.Name+" watch interrupted; resuming", "rev", rev, "err", err)
		}
		if !r.pause(ctx) {
			return ctx.Err()
		}
	}
}

// load calls Load until it succeeds, returns ErrStop, or ctx ends.
func (r *runner) load(ctx context.Context) (int64, error) {
	for {
		rev, err := r.o.Load(ctx)
		switch {
		case err == nil:
			r.backoff = 0
			return rev, nil
		case errors.Is(err, ErrStop):
			return rev, ErrStop
		case ctx.Err() != nil:
			return 0, ctx.Err()
		}
		r.log.Warn("cannot load the "+r.o.Name, "err", err)
		if !r.pause(ctx) {
			return 0, ctx.Err()
		}
	}
}

// follow watches from rev+1 until the watch ends, returning the newest
// revision delivered and why it ended.
func (r *runner) follow(ctx context.Context, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(rev + 1)}
	if r.o.ProgressNotify {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	for wr := range r.w.Watch(wctx, r.o.Prefix, opts...) {
		if wr.CompactRevision != 0 {
			return rev, rpctypes.ErrCompacted
		}
		if err := wr.Err(); err != nil {
			return rev, err
		}
		r.backoff = 0
		if wr.IsProgressNotify() {
			// Everything up to the header revision has been delivered.
			rev = max(rev, wr.Header.Revision)
			continue
		}
		if len(wr.Events) == 0 {
			continue
		}
		for _, ev := range wr.Events {
			rev = max(rev, ev.Kv.ModRevision)
		}
		if err := r.o.Apply(ctx, Batch{Events: wr.Events, Rev: rev}); err != nil {
			return rev, &stopError{err}
		}
	}
	if err := ctx.Err(); err != nil {
		return rev, err
	}
	return rev, errClosed
}

// pause sleeps a growing, jittered backoff; false when ctx ends first.
func (r *runner) pause(ctx context.Context) bool {
	r.backoff = min(max(2*r.backoff, minBackoff), maxBackoff)
	timer := time.NewTimer(r.backoff/2 + rand.N(r.backoff/2))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
