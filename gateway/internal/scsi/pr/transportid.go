package pr

import (
	"encoding/binary"
	"errors"
	"strings"
)

// iSCSI TransportID (SPC-4 7.6.4.6).
const (
	protocolISCSI      = 0x5
	tidFormatName      = 0x0 // iSCSI name only: the initiator device
	tidFormatPort      = 0x1 // iSCSI name + ",i,0x" + ISID: one initiator port
	tidHeaderLength    = 4
	tidMinAddLength    = 20
	tidMinLength       = tidHeaderLength + tidMinAddLength
	iscsiPortSeparator = ",i,0x"
	isidHexDigits      = 12
	maxISCSINameLength = 223 // RFC 7143 section 4.2.7.1
	maxPortNameLength  = maxISCSINameLength + len(iscsiPortSeparator) + isidHexDigits
)

// Offsets of the fields of a TransportID, for sense data.
const (
	tidFieldFormat    = 0
	tidFieldAddLength = 2
	tidFieldName      = 4
)

// tidError is a malformed TransportID; field is the offset of the bad
// field inside the TransportID.
type tidError struct{ field int }

func (e *tidError) Error() string { return "invalid iSCSI TransportID" }

// encodeTransportID returns the iSCSI TransportID of p's initiator port
// (format 01b), or of its initiator name when the port has no ISID.
func encodeTransportID(p Port) []byte {
	format := byte(tidFormatPort)
	s := p.InitiatorPort
	if indexFoldASCII(s, iscsiPortSeparator) < 0 {
		format, s = tidFormatName, p.InitiatorName
	}
	if len(s) > maxPortNameLength {
		s = s[:maxPortNameLength] // only corrupt state holds longer names
	}
	n := len(s) + 1 // null terminator
	if n < tidMinAddLength {
		n = tidMinAddLength
	}
	n = (n + 3) &^ 3
	b := make([]byte, tidHeaderLength+n)
	b[0] = format<<6 | protocolISCSI
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[tidHeaderLength:], s)
	return b
}

// decodeTransportID parses an iSCSI TransportID that names one initiator
// port and returns the port name "<iqn>,i,0x<isid>" and the initiator name.
// A name-only TransportID (format 00b) is refused: registrations here
// belong to one I_T nexus, which needs the ISID.
func decodeTransportID(b []byte) (port, name string, err error) {
	if len(b) < tidMinLength {
		return "", "", &tidError{tidFieldFormat}
	}
	if b[0]&0x0f != protocolISCSI || b[0]>>6 != tidFormatPort || b[0]&0x30 != 0 {
		return "", "", &tidError{tidFieldFormat}
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < tidMinAddLength || n%4 != 0 || tidHeaderLength+n > len(b) {
		return "", "", &tidError{tidFieldAddLength}
	}
	field := b[tidHeaderLength : tidHeaderLength+n]
	end := strings.IndexByte(string(field), 0)
	if end < 0 {
		return "", "", &tidError{tidFieldName}
	}
	s := string(field[:end])
	sep := indexFoldASCII(s, iscsiPortSeparator)
	if sep <= 0 || sep > maxISCSINameLength {
		return "", "", &tidError{tidFieldName}
	}
	name, isid := s[:sep], s[sep+len(iscsiPortSeparator):]
	if err := checkISCSIName(name); err != nil {
		return "", "", &tidError{tidFieldName}
	}
	if len(isid) != isidHexDigits || !isHex(isid) {
		return "", "", &tidError{tidFieldName}
	}
	return name + iscsiPortSeparator + strings.ToLower(isid), name, nil
}

// indexFoldASCII is strings.Index ignoring ASCII case. Unlike lowering the
// string first, it keeps byte offsets valid for any input.
func indexFoldASCII(s, sep string) int {
	lower := func(c byte) byte {
		if c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
outer:
	for i := 0; i+len(sep) <= len(s); i++ {
		for j := 0; j < len(sep); j++ {
			if lower(s[i+j]) != lower(sep[j]) {
				continue outer
			}
		}
		return i
	}
	return -1
}

// checkISCSIName accepts the characters an iSCSI name may hold after
// normalisation; anything else is a peer error.
func checkISCSIName(s string) error {
	for _, c := range []byte(s) {
		if c <= ' ' || c == ',' || c >= 0x7f {
			return errors.New("invalid character in iSCSI name")
		}
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
