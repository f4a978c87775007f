//go:build pacific

package rbd

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// fenced reports whether handles of client generation gen must not be used.
func (c *Cluster) fenced(gen uint64) bool { return c.fencedGen.Load() >= gen }

// noteFenced records that client generation gen was blocklisted and starts
// the background reconnect.
func (c *Cluster) noteFenced(gen uint64) {
	for {
		cur := c.fencedGen.Load()
		if cur >= gen {
			return // already known
		}
		if c.fencedGen.CompareAndSwap(cur, gen) {
			break
		}
	}
	if fn := c.onFenced.Load(); fn != nil {
		// The owner decides when a new client may serve (Reconnect).
		c.log.Warn("rbd: this gateway's rados client was blocklisted", "addr", c.ClientAddr())
		(*fn)(c.ClientAddr())
		return
	}
	c.log.Warn("rbd: this gateway's rados client was blocklisted; reconnecting", "addr", c.ClientAddr())
	c.startRecovery()
}

// OnFenced makes the Cluster tell fn when its client is found blocklisted
// instead of replacing the client by itself: a cluster gateway must first
// learn from etcd what happened while it was cut off, then call Reconnect.
// fn runs on an I/O path and must not block.
func (c *Cluster) OnFenced(fn func(addr string)) { c.onFenced.Store(&fn) }

// startRecovery runs the reconnect in the background unless one is
// already running.
func (c *Cluster) startRecovery() {
	if !c.recovering.CompareAndSwap(false, true) {
		return
	}
	c.connMu.RLock()
	closed := c.closed
	if !closed {
		c.wg.Add(1)
	}
	c.connMu.RUnlock()
	if closed {
		c.recovering.Store(false)
		return
	}
	go func() {
		defer c.wg.Done()
		for {
			c.recoverWithBackoff()
			c.recovering.Store(false)
			// A fence noted while this goroutine was finishing saw
			// recovering still set and left the work to it.
			if !c.Fenced() || !c.recovering.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// recoverWithBackoff retries recover until it succeeds or the Cluster
// closes.
func (c *Cluster) recoverWithBackoff() {
	backoff := 100 * time.Millisecond
	for {
		err := c.recover()
		if err == nil || errors.Is(err, rbdbackend.ErrClosed) {
			return
		}
		c.log.Error("rbd: reconnect failed; retrying", "err", err, "in", backoff)
		select {
		case <-c.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// recover reconnects if the current client is fenced.
func (c *Cluster) recover() error {
	c.reconnectMu.Lock()
	defer c.reconnectMu.Unlock()
	if !c.Fenced() {
		return nil
	}
	return c.reconnectLocked()
}

// Reconnect replaces the rados client with a new one (new address) and
// reopens every open image on it. Images lose the exclusive lock; call
// AcquireLock again where this gateway should own an image.
func (c *Cluster) Reconnect() error {
	c.reconnectMu.Lock()
	defer c.reconnectMu.Unlock()
	return c.reconnectLocked()
}

func (c *Cluster) reconnectLocked() error {
	conn, addr, err := dial(c.cfg)
	if err != nil {
		return err
	}
	c.connMu.Lock()
	if c.closed {
		c.connMu.Unlock()
		conn.Shutdown()
		return rbdbackend.ErrClosed
	}
	old, oldAddr, oldGen := c.conn, c.addr, c.gen
	c.conn, c.addr, c.gen = conn, addr, oldGen+1
	// Handles on the old client must not be used from now on, fenced or not.
	if c.fencedGen.Load() < oldGen {
		c.fencedGen.Store(oldGen)
	}
	gen := c.gen
	c.connMu.Unlock()

	c.imgMu.Lock()
	imgs := slices.Collect(maps.Keys(c.images))
	c.imgMu.Unlock()
	for _, img := range imgs {
		img.reopen(conn, gen)
	}
	old.Shutdown()
	c.log.Info("rbd: reconnected", "old_addr", oldAddr, "addr", addr, "images", len(imgs))
	// The old address stays blocklisted until the entry expires. Lifting
	// it here would be safe (that client is gone) but pointless: librbd
	// re-adds it whenever it breaks that client's stale lock.
	return nil
}
