package scsi

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// TargetOptions configure a Target.
type TargetOptions struct {
	// ALUA supplies the asymmetric access states; nil means a standalone
	// gateway: every logical unit Active/Optimized through one group.
	ALUA ALUAProvider
	// ImplicitTransitionSeconds is reported in the extended header of
	// REPORT TARGET PORT GROUPS.
	ImplicitTransitionSeconds uint8
	// Logger receives the target's logs (default slog.Default()).
	Logger *slog.Logger
}

// Target is the SCSI target device of one iSCSI target name: its logical
// units and the I_T nexuses logged in to it. All methods are safe for
// concurrent use.
type Target struct {
	name string
	opts TargetOptions
	alua ALUAProvider
	log  *slog.Logger

	// lus is replaced as a whole on every change so that the I/O path reads
	// it without a lock.
	lus atomic.Pointer[map[uint64]*LU]
	// mask is the LUN masking (masking.go); nil masks nothing.
	mask atomic.Pointer[maskTable]

	// mu serialises changes of lus, mask and nexuses.
	mu      sync.Mutex
	nexuses map[string]*Nexus
}

// NewTarget creates a target with no logical units.
func NewTarget(name string, opts TargetOptions) *Target {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Target{
		name:    name,
		opts:    opts,
		alua:    opts.ALUA,
		log:     opts.Logger.With("target", name),
		nexuses: make(map[string]*Nexus),
	}
	if t.alua == nil {
		t.alua = localALUA{}
	}
	empty := map[uint64]*LU{}
	t.lus.Store(&empty)
	return t
}

// Name is the target name.
func (t *Target) Name() string { return t.name }

// LU returns the logical unit mapped at lun, or nil.
func (t *Target) LU(lun uint64) *LU { return (*t.lus.Load())[lun] }

// LUNs lists the mapped LUNs in ascending order.
func (t *Target) LUNs() []uint64 {
	return slices.Sorted(maps.Keys(*t.lus.Load()))
}

// SetLU maps lu at lun, replacing what was there. Every logged-in I_T nexus
// that sees lun gets REPORTED LUNS DATA HAS CHANGED on the other logical
// units it sees.
func (t *Target) SetLU(lun uint64, lu *LU) {
	if lu == nil {
		t.RemoveLU(lun)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.lus.Load()
	prev := old[lun]
	if prev == lu {
		return
	}
	next := maps.Clone(old)
	next[lun] = lu
	t.lus.Store(&next)
	for _, n := range t.nexuses {
		lu.attach(n, 0)
	}
	if prev != nil {
		t.forgetIfUnmapped(next, prev)
	}
	t.viewsChanged(old, t.mask.Load())
}

// RemoveLU unmaps lun. Tasks still running on it complete; the caller
// closes the logical unit and its image once it is unmapped everywhere.
func (t *Target) RemoveLU(lun uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.lus.Load()
	lu, ok := old[lun]
	if !ok {
		return
	}
	next := maps.Clone(old)
	delete(next, lun)
	t.lus.Store(&next)
	t.forgetIfUnmapped(next, lu)
	t.viewsChanged(old, t.mask.Load())
}

// forgetIfUnmapped drops what lu kept for this target's I_T nexuses when lu
// is no longer mapped at any LUN of the target. t.mu is held.
func (t *Target) forgetIfUnmapped(lus map[uint64]*LU, lu *LU) {
	if slices.Contains(slices.Collect(maps.Values(lus)), lu) {
		return
	}
	for _, n := range t.nexuses {
		lu.detach(n)
	}
}

// NexusLogin registers a new I_T nexus: every logical unit establishes
// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED for it (SAM-5 6.3.1).
func (t *Target) NexusLogin(n *Nexus) {
	if n == nil {
		return
	}
	c := n.clone()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nexuses[c.Key()] = c
	for _, lu := range *t.lus.Load() {
		lu.attach(c, ascPowerOnReset)
	}
}

// NexusLogout handles an I_T nexus loss: the nexus's tasks are aborted
// (nobody is left to answer), its SPC-2 reservations end and the state the
// logical units kept for it is dropped. Persistent reservations stay.
func (t *Target) NexusLogout(n *Nexus) {
	if n == nil {
		return
	}
	key := n.Key()
	t.mu.Lock()
	delete(t.nexuses, key)
	lus := *t.lus.Load()
	t.mu.Unlock()
	port := portOf(n)
	for _, lu := range lus {
		lu.tasks.abort(func(e *taskEntry) bool { return e.key.nexus == key },
			func(*taskEntry) bool { return false })
		lu.pr.NexusLoss(context.Background(), port)
		lu.detach(n)
	}
}
