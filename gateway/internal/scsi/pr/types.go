package pr

// Persistent reservation types (SPC-4 table 169).
const (
	TypeWriteExclusive          uint8 = 0x1
	TypeExclusiveAccess         uint8 = 0x3
	TypeWriteExclusiveRegsOnly  uint8 = 0x5
	TypeExclusiveAccessRegsOnly uint8 = 0x6
	TypeWriteExclusiveAllRegs   uint8 = 0x7
	TypeExclusiveAccessAllRegs  uint8 = 0x8
)

const (
	scopeLU uint8 = 0x0
	// maxRegistrations bounds the state a peer can make us hold.
	maxRegistrations = 4096
	cdbLength        = 10 // PERSISTENT RESERVE IN/OUT
)

// Port identifies one I_T nexus as the reservation rules need it.
type Port struct {
	InitiatorPort  string `json:"initiator_port"` // "<iqn>,i,0x<isid>"
	InitiatorName  string `json:"initiator_name"` // "<iqn>"
	TargetPort     string `json:"target_port"`    // "<iqn>,t,0x<tpgt>"
	RelativePortID uint16 `json:"relative_port_id"`
}

// Same reports whether p and o are the same I_T nexus. iSCSI names are
// case-insensitive after normalisation, and the ISID is hex.
func (p Port) Same(o Port) bool {
	return SameName(p.InitiatorPort, o.InitiatorPort) && SameName(p.TargetPort, o.TargetPort)
}

// Registration is the reservation key registered by one I_T nexus.
type Registration struct {
	Key  uint64 `json:"key"`
	Port Port   `json:"port"`
}

// Reservation is the persistent reservation of the logical unit (scope is
// always LU_SCOPE). For the all-registrants types every registered I_T nexus
// is a holder; Holder then names the nexus that established it (or a
// remaining registrant once that one left) and Key is zero, as READ
// RESERVATION reports it.
type Reservation struct {
	Holder         Port   `json:"holder"`
	Key            uint64 `json:"key"`
	Type           uint8  `json:"type"`
	AllRegistrants bool   `json:"all_registrants"`
}

// State is everything the reservation rules need for one logical unit.
type State struct {
	Generation    uint32         `json:"generation"`
	Registrations []Registration `json:"registrations"`
	Reservation   *Reservation   `json:"reservation,omitempty"`
	APTPL         bool           `json:"aptpl"`
	// Legacy is the holder of an SPC-2 RESERVE(6/10), nil when none. A
	// cluster store shares it like the rest; the APTPL file never holds it
	// (SPC-2 reservations do not survive a power loss).
	Legacy *Port `json:"legacy,omitempty"`
}

// Clone returns a deep copy of st.
func (st *State) Clone() *State {
	if st == nil {
		return &State{}
	}
	c := *st
	if st.Registrations != nil {
		c.Registrations = append([]Registration(nil), st.Registrations...)
	}
	if st.Reservation != nil {
		r := *st.Reservation
		c.Reservation = &r
	}
	if st.Legacy != nil {
		l := *st.Legacy
		c.Legacy = &l
	}
	return &c
}

// registration returns the index of p's registration, or -1.
func (st *State) registration(p Port) int {
	for i := range st.Registrations {
		if st.Registrations[i].Port.Same(p) {
			return i
		}
	}
	return -1
}

func (st *State) isRegistered(p Port) bool { return st.registration(p) >= 0 }

// isHolder reports whether p holds the persistent reservation.
func (st *State) isHolder(p Port) bool {
	r := st.Reservation
	if r == nil {
		return false
	}
	if r.AllRegistrants {
		return st.isRegistered(p)
	}
	return r.Holder.Same(p)
}

// holdsLegacy reports whether p holds the SPC-2 reservation.
func (st *State) holdsLegacy(p Port) bool {
	return st.Legacy != nil && st.Legacy.Same(p)
}

func validType(t uint8) bool {
	switch t {
	case TypeWriteExclusive, TypeExclusiveAccess,
		TypeWriteExclusiveRegsOnly, TypeExclusiveAccessRegsOnly,
		TypeWriteExclusiveAllRegs, TypeExclusiveAccessAllRegs:
		return true
	}
	return false
}

func isAllRegistrants(t uint8) bool {
	return t == TypeWriteExclusiveAllRegs || t == TypeExclusiveAccessAllRegs
}

func isRegistrantsOnly(t uint8) bool {
	return t == TypeWriteExclusiveRegsOnly || t == TypeExclusiveAccessRegsOnly
}

// newReservation builds the reservation p establishes with its key.
func newReservation(p Port, key uint64, t uint8) *Reservation {
	r := &Reservation{Holder: p, Key: key, Type: t, AllRegistrants: isAllRegistrants(t)}
	if r.AllRegistrants {
		r.Key = 0
	}
	return r
}
