package scsi

// AccessState is an asymmetric access state (SPC-4 5.15.2).
type AccessState uint8

// Asymmetric access states.
const (
	ActiveOptimized    AccessState = 0x0
	ActiveNonOptimized AccessState = 0x1
	Standby            AccessState = 0x2
	Unavailable        AccessState = 0x3
	LBADependent       AccessState = 0x4
	Offline            AccessState = 0xe
	Transitioning      AccessState = 0xf
)

// TargetPortGroup is one target port group of a logical unit as REPORT
// TARGET PORT GROUPS describes it.
type TargetPortGroup struct {
	ID        uint16
	State     AccessState
	Preferred bool
	// StatusCode: 0 none, 1 changed by SET TARGET PORT GROUPS, 2 changed by
	// implicit behaviour.
	StatusCode uint8
	// Ports are the relative target port identifiers in the group.
	Ports []uint16
}

// ALUAProvider supplies the asymmetric access states of logical units. The
// cluster implements it from shared state so that every gateway reports the
// same groups; when a state changes it calls LU.AccessStateChanged.
type ALUAProvider interface {
	// AccessState is the state of the target port group n's target port
	// belongs to, for lu. It runs for every command and must be cheap.
	AccessState(lu *LU, n *Nexus) AccessState
	// TargetPortGroups lists every target port group of lu, as seen
	// through n.
	TargetPortGroups(lu *LU, n *Nexus) []TargetPortGroup
}

// localALUA is the provider of a standalone gateway: one target port group,
// the nexus's own, Active/Optimized and preferred.
type localALUA struct{}

func (localALUA) AccessState(*LU, *Nexus) AccessState { return ActiveOptimized }

func (localALUA) TargetPortGroups(_ *LU, n *Nexus) []TargetPortGroup {
	return []TargetPortGroup{{
		ID: n.PortGroupID, State: ActiveOptimized, Preferred: true,
		Ports: []uint16{n.RelativePortID},
	}}
}

// aluaRefusal returns the NOT READY sense for a command of entry e arriving
// through a target port group in state s, or nil when it may run
// (SPC-4 5.15.2.4).
func aluaRefusal(s AccessState, e *opEntry) *senseError {
	if e.flags&flagALUAAny != 0 {
		return nil
	}
	switch s {
	case Standby:
		if e.flags&flagALUAStandby != 0 {
			return nil
		}
		return newSense(senseNotReady, ascNotReadyStandby)
	case Unavailable:
		return newSense(senseNotReady, ascNotReadyUnavailable)
	case Transitioning:
		return newSense(senseNotReady, ascNotReadyTransition)
	case Offline:
		return newSense(senseNotReady, ascNotReadyOffline)
	}
	return nil
}

// supportedStatesMask is byte 1 of a target port group descriptor: the
// states a group may report (T_SUP, O_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP).
const supportedStatesMask = 0x80 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01

// cmdReportTargetPortGroups is REPORT TARGET PORT GROUPS (SPC-4 6.36).
func cmdReportTargetPortGroups(t *task) ([]byte, error) {
	format := t.cdb[1] >> 5
	if format > 1 {
		return nil, invalidCDB(1, 7)
	}
	alloc := be32(t.cdb[6:10])
	groups := t.tgt.alua.TargetPortGroups(t.lu, t.nexus)
	hdr := 4
	if format == 1 {
		hdr = 8
	}
	data := make([]byte, hdr)
	for _, g := range groups {
		d := make([]byte, 8, 8+4*len(g.Ports))
		d[0] = byte(g.State) & 0x0f
		if g.Preferred {
			d[0] |= 0x80
		}
		d[1] = supportedStatesMask
		put16(d[2:4], g.ID)
		d[5] = g.StatusCode
		d[7] = byte(min(len(g.Ports), 255))
		for _, p := range g.Ports[:d[7]] {
			var pd [4]byte
			put16(pd[2:4], p)
			d = append(d, pd[:]...)
		}
		data = append(data, d...)
	}
	put32(data[0:4], uint32(len(data)-4))
	if format == 1 {
		data[4] = 0x10 // FORMAT TYPE 001b: extended header
		data[5] = t.tgt.opts.ImplicitTransitionSeconds
	}
	return cut(data, alloc), nil
}
