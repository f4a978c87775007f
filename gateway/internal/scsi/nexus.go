package scsi

import (
	"encoding/hex"
	"strconv"
)

// nexusNames are the names derived from the identifying fields of a Nexus,
// with the fields they were derived from. Commands ask for them several
// times each (task set, reservations, unit attentions), so they are built
// once instead of formatted every time.
type nexusNames struct {
	initiatorName string
	isid          [6]byte
	targetName    string
	tpgt          uint16

	initiatorPort string
	targetPort    string
	key           string
}

// portNames returns the cached names of n, building them when there are
// none yet or the identifying fields changed since. Concurrent callers may
// both build them; either result is correct.
func (n *Nexus) portNames() *nexusNames {
	if c := n.names.Load(); c != nil && c.describes(n) {
		return c
	}
	c := newNexusNames(n)
	n.names.Store(c)
	return c
}

func (c *nexusNames) describes(n *Nexus) bool {
	return c.initiatorName == n.InitiatorName && c.isid == n.ISID &&
		c.targetName == n.TargetName && c.tpgt == n.TPGT
}

// newNexusNames formats "<iqn>,i,0x<isid>" and "<iqn>,t,0x<tpgt>" (TPGT as
// four hex digits, more only when it needs them).
func newNexusNames(n *Nexus) *nexusNames {
	ip := n.InitiatorName + ",i,0x" + hex.EncodeToString(n.ISID[:])
	tpgt := strconv.FormatUint(uint64(n.TPGT), 16)
	for len(tpgt) < 4 {
		tpgt = "0" + tpgt
	}
	tp := n.TargetName + ",t,0x" + tpgt
	return &nexusNames{
		initiatorName: n.InitiatorName, isid: n.ISID, targetName: n.TargetName, tpgt: n.TPGT,
		initiatorPort: ip, targetPort: tp, key: ip + "|" + tp,
	}
}

// clone returns a copy of the identifying fields of n that shares its
// cached names (a Nexus holds an atomic and is not copied by value).
func (n *Nexus) clone() *Nexus {
	c := &Nexus{
		InitiatorName: n.InitiatorName, ISID: n.ISID, TargetName: n.TargetName, TPGT: n.TPGT,
		RelativePortID: n.RelativePortID, PortGroupID: n.PortGroupID,
	}
	c.names.Store(n.portNames())
	return c
}
