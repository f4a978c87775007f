//go:build pacific

package rbd

import (
	"fmt"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// AcquireLock takes the image's exclusive lock for this gateway as a
// managed lock: librbd then refuses to hand it to another client that asks,
// so other clients' writes fail (ErrLockLost on their side) until this
// gateway releases it or another gateway breaks it (which fences this
// client). If this client was fenced, AcquireLock first reconnects. It
// blocks while a crashed owner's watch expires (osd_client_watch_timeout);
// use TakeLock to break a live owner's lock instead.
func (i *Image) AcquireLock() error {
	if err := i.c.recover(); err != nil {
		return err
	}
	if err := i.ensureOpen(); err != nil {
		return err
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.lockable("lock acquire")
	if err != nil {
		return err
	}
	if rc := h.lockAcquire(); rc < 0 {
		if fencing(rc) {
			i.c.noteFenced(h.gen)
		}
		return opError("lock acquire", i.spec, rc, ctxAdmin)
	}
	i.lockGen.Store(h.gen)
	return nil
}

// TakeLock makes this gateway the lock owner whoever holds it now: every
// other owner is blocklisted and its lock broken (BreakLock), then the lock
// is acquired. This is the ownership move of an ALUA transition.
func (i *Image) TakeLock() error {
	if err := i.c.recover(); err != nil {
		return err
	}
	if held, err := i.HoldsLock(); err == nil && held {
		return nil
	}
	owners, err := i.LockOwners()
	if err != nil {
		return err
	}
	self := i.c.ClientAddr()
	for _, o := range owners {
		if o == self {
			continue
		}
		if err := i.BreakLock(o); err != nil {
			return err
		}
	}
	return i.AcquireLock()
}

// lockable is use plus the check that the image has a lock at all.
func (i *Image) lockable(op string) (*handle, error) {
	h, err := i.use(op)
	if err != nil {
		return nil, err
	}
	if !i.hasFeature(featureExclusiveLock) {
		return nil, fmt.Errorf("rbd: %s %s: image lacks the exclusive-lock feature: %w", op, i.spec, rbdbackend.ErrUnsupported)
	}
	return h, nil
}

// ReleaseLock gives the exclusive lock up.
func (i *Image) ReleaseLock() error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.lockable("lock release")
	if err != nil {
		return err
	}
	i.lockGen.Store(0)
	if rc := h.lockRelease(); rc < 0 {
		return opError("lock release", i.spec, rc, ctxAdmin)
	}
	return nil
}

// HoldsLock reports whether this gateway holds the managed exclusive lock
// (taken with AcquireLock and neither released nor broken since).
func (i *Image) HoldsLock() (bool, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.lockable("lock status")
	if err != nil {
		return false, err
	}
	if i.lockGen.Load() != h.gen {
		return false, nil
	}
	owner, rc := h.isLockOwner()
	if rc < 0 {
		return false, i.fail("lock status", h, rc)
	}
	if !owner {
		i.lockGen.CompareAndSwap(h.gen, 0)
	}
	return owner, nil
}

// LockOwners returns the client addresses ("ip:port/nonce") holding the
// exclusive lock; empty when nobody does.
func (i *Image) LockOwners() ([]string, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.lockable("lock owners")
	if err != nil {
		return nil, err
	}
	owners, rc := h.lockOwners()
	if rc < 0 {
		return nil, i.fail("lock owners", h, rc)
	}
	return owners, nil
}

// BreakLock fences owner and breaks its exclusive lock: the owner's client
// address is blocklisted (for Config.BlocklistExpiry) before the lock is
// broken, so no write of the old owner can land after this returns.
func (i *Image) BreakLock(owner string) error {
	if owner == i.c.ClientAddr() {
		return fmt.Errorf("rbd: break lock of %s: %s is this gateway's own client: %w", i.spec, owner, ErrInvalid)
	}
	if err := i.c.Blocklist(owner, i.c.cfg.BlocklistExpiry); err != nil {
		return err
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.lockable("lock break")
	if err != nil {
		return err
	}
	if rc := h.lockBreak(owner); rc < 0 {
		return opError("lock break", i.spec, rc, ctxAdmin)
	}
	i.c.log.Warn("rbd: broke exclusive lock", "image", i.spec, "owner", owner)
	return nil
}
