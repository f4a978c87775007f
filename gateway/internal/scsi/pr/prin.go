package pr

import "encoding/binary"

// PERSISTENT RESERVE IN service actions.
const (
	saReadKeys           = 0x00
	saReadReservation    = 0x01
	saReportCapabilities = 0x02
	saReadFullStatus     = 0x03
)

// REPORT CAPABILITIES bits (SPC-4 6.16.4).
const (
	capCRH            = 0x10 // byte 2: compatible reservation handling
	capPTPLC          = 0x01 // byte 2: persist through power loss capable
	capTMV            = 0x80 // byte 3: type mask valid
	capAllowCommands1 = 0x10 // byte 3: ALLOW COMMANDS 001b (TEST UNIT READY allowed)
	capPTPLA          = 0x01 // byte 3: persist through power loss active
	// Type mask, bytes 4-5: every type is supported.
	capTypeMask4 = 0x80 | 0x40 | 0x20 | 0x08 | 0x02 // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
	capTypeMask5 = 0x01                             // EX_AC_AR
)

// readKeys encodes READ KEYS: PRGENERATION, ADDITIONAL LENGTH and one key
// per registered I_T nexus.
func readKeys(st *State) []byte {
	b := make([]byte, 8, 8+8*len(st.Registrations))
	binary.BigEndian.PutUint32(b[0:], st.Generation)
	binary.BigEndian.PutUint32(b[4:], uint32(8*len(st.Registrations)))
	for _, r := range st.Registrations {
		b = binary.BigEndian.AppendUint64(b, r.Key)
	}
	return b
}

// readReservation encodes READ RESERVATION: the header and, when reserved,
// one 16-byte descriptor. All-registrants reservations report key zero.
func readReservation(st *State) []byte {
	r := st.Reservation
	if r == nil {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b[0:], st.Generation)
		return b
	}
	b := make([]byte, 24)
	binary.BigEndian.PutUint32(b[0:], st.Generation)
	binary.BigEndian.PutUint32(b[4:], 16)
	binary.BigEndian.PutUint64(b[8:], r.Key)
	b[21] = scopeLU<<4 | r.Type&0x0f
	return b
}

// reportCapabilities encodes REPORT CAPABILITIES.
func reportCapabilities(st *State) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], 8)
	b[2] = capCRH | capPTPLC
	b[3] = capTMV | capAllowCommands1
	if st.APTPL {
		b[3] |= capPTPLA
	}
	b[4] = capTypeMask4
	b[5] = capTypeMask5
	return b
}

// readFullStatus encodes READ FULL STATUS: one descriptor per registered
// I_T nexus with its key, holder flag, type, relative target port and
// TransportID.
func readFullStatus(st *State) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[0:], st.Generation)
	for _, reg := range st.Registrations {
		tid := encodeTransportID(reg.Port)
		d := make([]byte, 24, 24+len(tid))
		binary.BigEndian.PutUint64(d[0:], reg.Key)
		if st.isHolder(reg.Port) {
			d[12] = 0x01 // R_HOLDER
			d[13] = scopeLU<<4 | st.Reservation.Type&0x0f
		}
		binary.BigEndian.PutUint16(d[18:], reg.Port.RelativePortID)
		binary.BigEndian.PutUint32(d[20:], uint32(len(tid)))
		b = append(b, append(d, tid...)...)
	}
	binary.BigEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}
