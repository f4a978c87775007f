package scsi

import (
	"maps"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// LUN masking. A target maps LUN numbers to logical units; masking decides
// which of them each initiator may address. A LUN outside an I_T nexus's
// view is, to that nexus, exactly an absent LUN (SPC-4 4.6.21, "logical
// units not accessible to the I_T nexus"): REPORT LUNS leaves it out,
// INQUIRY answers peripheral qualifier 011b, every other command ends with
// LOGICAL UNIT NOT SUPPORTED, task management answers "LUN does not
// exist", and EXTENDED COPY cannot name it. Every path that addresses a
// LUN goes through Target.luFor or Target.visible.

// Masking maps iSCSI initiator names to the LUN numbers they see. Names
// compare as reservations compare them (pr.NameKey: lower case, RFC 3722). A listed initiator sees exactly its list,
// none when the list is empty, even LUNs mapped later; an initiator not
// listed (a target that admits any initiator) sees every LUN. A nil or
// empty Masking masks nothing.
type Masking map[string][]uint64

// maskTable is the immutable form of a Masking the I/O path reads.
type maskTable struct {
	views map[string]map[uint64]bool
}

func newMaskTable(m Masking) *maskTable {
	if len(m) == 0 {
		return nil
	}
	t := &maskTable{views: make(map[string]map[uint64]bool, len(m))}
	for initiator, luns := range m {
		v := make(map[uint64]bool, len(luns))
		for _, lun := range luns {
			v[lun] = true
		}
		t.views[pr.NameKey(initiator)] = v
	}
	return t
}

// sees reports whether initiator may address lun.
func (m *maskTable) sees(initiator string, lun uint64) bool {
	if m == nil {
		return true
	}
	v, listed := m.views[pr.NameKey(initiator)]
	return !listed || v[lun]
}

// visibleIn is the part of lus the initiator of n sees under m.
func visibleIn(lus map[uint64]*LU, m *maskTable, n *Nexus) map[uint64]*LU {
	out := make(map[uint64]*LU, len(lus))
	for lun, lu := range lus {
		if m.sees(n.InitiatorName, lun) {
			out[lun] = lu
		}
	}
	return out
}

// luFor returns the logical unit n addresses at lun: nil when nothing is
// mapped there or the LUN is outside the view of n.
func (t *Target) luFor(n *Nexus, lun uint64) *LU {
	if n == nil || !t.mask.Load().sees(n.InitiatorName, lun) {
		return nil
	}
	return t.LU(lun)
}

// visible returns the logical units n sees, by LUN.
func (t *Target) visible(n *Nexus) map[uint64]*LU {
	return visibleIn(*t.lus.Load(), t.mask.Load(), n)
}

// LUNsFor lists the LUNs the I_T nexus n sees, in ascending order.
func (t *Target) LUNsFor(n *Nexus) []uint64 {
	return slices.Sorted(maps.Keys(t.visible(n)))
}

// SetMasking replaces the LUN masking of the target. Sessions stay up;
// every logged-in I_T nexus whose view changed gets REPORTED LUNS DATA HAS
// CHANGED.
func (t *Target) SetMasking(m Masking) {
	t.mu.Lock()
	defer t.mu.Unlock()
	oldMask := t.mask.Load()
	t.mask.Store(newMaskTable(m))
	t.viewsChanged(*t.lus.Load(), oldMask)
}

// viewsChanged establishes REPORTED LUNS DATA HAS CHANGED (SPC-4 6.33) for
// each logged-in I_T nexus whose view differs between the previous LUN map
// and masking (oldLUs, oldMask) and the current ones: on the logical units
// it saw before and still sees at the same LUN, or, when there are none, on
// those it sees now. A logical unit new to a nexus that saw others reports
// nothing itself, as a newly mapped logical unit never has. t.mu is held.
func (t *Target) viewsChanged(oldLUs map[uint64]*LU, oldMask *maskTable) {
	lus, mask := *t.lus.Load(), t.mask.Load()
	for _, n := range t.nexuses {
		before, after := visibleIn(oldLUs, oldMask, n), visibleIn(lus, mask, n)
		if maps.Equal(before, after) {
			continue
		}
		var kept []*LU
		for lun, lu := range after {
			if before[lun] == lu {
				kept = append(kept, lu)
			}
		}
		if len(kept) == 0 {
			kept = slices.Collect(maps.Values(after))
		}
		for _, lu := range kept {
			lu.attach(n, ascReportedLUNsChanged)
		}
	}
}
