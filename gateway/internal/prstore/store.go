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

	// fx serialises applying the effects of other gateways' changes:
	// whoever observes a revision first (the watch, a reload) applies
	// them, and the others wait until that is done, so that the watch
	// confirms a revision only after its effects are applied.
	fx sync.Mutex
	// fxSeq is the newest change whose effects are applied (under fx).
	fxSeq uint64
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
// gateway won the race. It returns once every other gateway serving the
// disk has applied the change or has been fenced; when that cannot be
// established it returns an error wrapping ErrNotConfirmed, and the
// change stays committed.
func (s *Store) Update(ctx context.Context, fn func(st *pr.State) error) error {
	return s.commit(ctx, true, func(r *record) error { return fn(r.State) })
}

// UpdateEffects is Update for a change with effects on I_T nexuses: the
// record carries them, and every other gateway applies them (unit
// attentions, aborted tasks) before it confirms the change.
func (s *Store) UpdateEffects(ctx context.Context, fn func(st *pr.State) (pr.Effects, error)) error {
	return s.commit(ctx, true, func(r *record) error {
		eff, err := fn(r.State)
		if err != nil {
			return err
		}
		if !eff.Empty() {
			*r = r.withChange(s.hub.opts.Gateway, eff)
		}
		return nil
	})
}

// Reset records a logical unit reset this gateway performed, so that the
// other gateways establish its unit attention on their I_T nexuses. It
// returns once they have, or when the acknowledgement timeout passed: a
// reset takes no right away from anybody, so nobody is fenced for it.
func (s *Store) Reset(ctx context.Context) error {
	return s.commit(ctx, false, func(r *record) error {
		r.Resets++
		r.ResetBy = s.hub.opts.Gateway
		return nil
	})
}

// commit is the read-modify-write loop shared by Update and Reset. strict
// changes are confirmed by every gateway serving the disk or fenced.
func (s *Store) commit(ctx context.Context, strict bool, change func(*record) error) error {
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
		s.observe(rev, next, false)
		return s.hub.waitApplied(ctx, s.disk, rev, strict)
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
	// Effects are left to the watch: this may run in a command that a
	// change being applied aborts and waits for.
	s.observe(rev, rec, false)
	return s.cur.Load(), nil
}

// observe publishes the state stored at rev if it is newer than what is
// known, reports a reset made by another gateway to the hub and, when
// effects is set, applies the effects of other gateways' changes. It is
// called by the watch and the hub's reloads (effects set: they confirm
// revisions), by a store's own reloads and after this gateway's own
// commits.
func (s *Store) observe(rev int64, rec record, effects bool) {
	next := &snapshot{rev: rev, rec: rec}
	first := false
	for {
		old := s.cur.Load()
		if rev <= old.rev {
			break
		}
		if s.cur.CompareAndSwap(old, next) {
			// A reset counted before this gateway first loaded the state
			// (old.rev < 0) is no news to its nexuses.
			first = old.rev < 0
			if !first && rec.Resets > old.rec.Resets && rec.ResetBy != s.hub.opts.Gateway {
				s.hub.peerReset(s.disk)
			}
			break
		}
	}
	if effects || first {
		s.applyEffects(rec, first)
	}
}

// applyEffects applies, in order, the effects of the changes in rec that
// other gateways made and that are not applied yet. Changes made before
// this gateway first loaded the state (first) concern no nexus here.
func (s *Store) applyEffects(rec record, first bool) {
	s.fx.Lock()
	defer s.fx.Unlock()
	if first {
		s.fxSeq = max(s.fxSeq, rec.Seq)
		return
	}
	if rec.Seq <= s.fxSeq {
		return
	}
	if len(rec.Changes) == 0 || rec.Changes[0].Seq > s.fxSeq+1 {
		s.hub.log.Warn("effects of reservation changes missed (unit attentions, aborted tasks)",
			"disk", s.disk, "from", s.fxSeq+1, "to", rec.Seq)
	}
	for _, ch := range rec.Changes {
		if ch.Seq <= s.fxSeq {
			continue
		}
		if ch.By != s.hub.opts.Gateway {
			s.hub.peerChange(s.disk, ch)
		}
		s.fxSeq = ch.Seq
	}
	s.fxSeq = max(s.fxSeq, rec.Seq)
}

// deleted records that pr/<disk> was deleted (with its disk): the state is
// the initial one again and the next write creates the key.
func (s *Store) deleted() {
	initial, _ := decode(nil)
	s.cur.Store(&snapshot{rev: 0, rec: initial})
	s.fx.Lock()
	s.fxSeq = 0
	s.fx.Unlock()
}

// String names the store in logs.
func (s *Store) String() string { return fmt.Sprintf("reservations of %s", s.disk) }

// ackContext bounds the wait for the other gateways; it outlives the
// command's own cancellation so that a committed change is still
// confirmed.
func ackContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
