package pr

import (
	"context"
	"sync"
	"sync/atomic"
)

// Store holds the State of one logical unit.
//
// Get returns a snapshot that callers must treat as read-only: stores share
// it between readers so that the per-command conflict check costs no copy.
// Update runs fn on a private copy and commits it atomically; fn may run
// more than once (a cluster store retries on a lost compare-and-swap) and
// fn's error aborts the update without committing anything.
type Store interface {
	Get(ctx context.Context) (*State, error)
	Update(ctx context.Context, fn func(st *State) error) error
}

// memoryStore keeps the state in memory: readers load an immutable snapshot
// without locking, writers serialise on a mutex and publish a new snapshot.
type memoryStore struct {
	mu  sync.Mutex
	cur atomic.Pointer[State]
	// commit, when set, makes the new state durable before it is
	// published; its error aborts the update.
	commit func(st *State) error
}

// NewMemoryStore returns a Store that lives in memory only.
func NewMemoryStore() Store { return newMemoryStore(&State{}, nil) }

func newMemoryStore(initial *State, commit func(*State) error) *memoryStore {
	s := &memoryStore{commit: commit}
	s.cur.Store(initial)
	return s
}

func (s *memoryStore) Get(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.cur.Load(), nil
}

func (s *memoryStore) Update(ctx context.Context, fn func(st *State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cur.Load().Clone()
	if err := fn(next); err != nil {
		return err
	}
	if s.commit != nil {
		if err := s.commit(next); err != nil {
			return err
		}
	}
	s.cur.Store(next)
	return nil
}
