package prstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// maxAttempts bounds the compare-and-swap retries of one update; each
// retry means another gateway changed the same disk's state meanwhile.
const maxAttempts = 16

// Store is the pr.Store of one disk. Get is served from memory; Update and
// Reset write through etcd.
type Store struct {
	hub  *Hub
	disk string

	// mu serialises this gateway's writes of the disk's state, so that
	// they do not race each other through the compare-and-swap.
	mu  sync.Mutex
	cur atomic.Pointer[snapshot]
}

// snapshot is the newest known state; it is never modified after it is
// published.
type snapshot struct {
	// rev is the mod revision of pr/<disk>: 0 when the key does not
	// exist, -1 before the state was first loaded.
	rev int64
	rec record
}

var _ pr.Store = (*Store)(nil)

// Get returns the newest state this gateway knows. It is read-only.
func (s *Store) Get(ctx context.Context) (*pr.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.cur.Load().rec.State, nil
}

// Update runs fn on a copy of the state and commits the result with a
// compare-and-swap, running fn again on the fresh state when another
// gateway won the race. It returns once the other gateways have applied
// the change (or the acknowledgement timeout passed; the change is
// committed either way).
func (s *Store) Update(ctx context.Context, fn func(st *pr.State) error) error {
	return s.commit(ctx, func(r *record) error { return fn(r.State) })
}

// Reset records a logical unit reset this gateway performed, so that the
// other gateways establish its unit attention on their I_T nexuses. It
// returns once they have, or when the acknowledgement timeout passed.
func (s *Store) Reset(ctx context.Context) error {
	return s.commit(ctx, func(r *record) error {
		r.Resets++
		r.ResetBy = s.hub.opts.Gateway
		return nil
	})
}

// commit is the read-modify-write loop shared by Update and Reset.
func (s *Store) commit(ctx context.Context, change func(*record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.cur.Load()
	if base.rev < 0 {
		var err error
		if base, err = s.reload(ctx); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		next := base.rec
		next.State = base.rec.State.Clone()
		if err := change(&next); err != nil {
			return err
		}
		data, err := encode(next)
		if err != nil {
			return err
		}
		rev, err := s.hub.opts.Store.CASPR(ctx, s.disk, base.rev, data)
		if errors.Is(err, cluster.ErrConflict) && attempt < maxAttempts {
			if base, err = s.reload(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		s.observe(rev, next)
		s.hub.waitApplied(ctx, s.disk, rev)
		return nil
	}
}

// reload reads the stored state, applies it and returns the newest known.
func (s *Store) reload(ctx context.Context) (*snapshot, error) {
	data, rev, err := s.hub.opts.Store.GetPR(ctx, s.disk)
	if err != nil {
		return nil, err
	}
	rec, err := decode(data)
	if err != nil {
		return nil, err
	}
	s.observe(rev, rec)
	return s.cur.Load(), nil
}

// observe publishes the state stored at rev if it is newer than what is
// known, and reports a reset made by another gateway to the hub. It is
// called by the watch, by reloads and after this gateway's own commits.
func (s *Store) observe(rev int64, rec record) {
	next := &snapshot{rev: rev, rec: rec}
	for {
		old := s.cur.Load()
		if rev <= old.rev {
			return
		}
		if s.cur.CompareAndSwap(old, next) {
			// A reset counted before this gateway first loaded the state
			// (old.rev < 0) is no news to its nexuses.
			if old.rev >= 0 && rec.Resets > old.rec.Resets && rec.ResetBy != s.hub.opts.Gateway {
				s.hub.peerReset(s.disk)
			}
			return
		}
	}
}

// deleted records that pr/<disk> was deleted (with its disk): the state is
// the initial one again and the next write creates the key.
func (s *Store) deleted() {
	initial, _ := decode(nil)
	s.cur.Store(&snapshot{rev: 0, rec: initial})
}

// String names the store in logs.
func (s *Store) String() string { return fmt.Sprintf("reservations of %s", s.disk) }

// ackContext bounds the wait for the other gateways; it outlives the
// command's own cancellation so that a committed change is still
// confirmed.
func ackContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
