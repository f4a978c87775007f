package login

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// Reserved answer values (RFC 7143 §6.2).
const (
	valueReject        = "Reject"
	valueIrrelevant    = "Irrelevant"
	valueNotUnderstood = "NotUnderstood"
	valueNone          = "None"
	valueYes           = "Yes"
	valueNo            = "No"
)

// maxSimpleValue is the length limit of simple and list values
// (RFC 7143 §6.1: 255 bytes unless a key says otherwise).
const maxSimpleValue = 255

// maxNameLength is the limit of iSCSI names (RFC 7143 §4.2.7.1).
const maxNameLength = 223

var errBadValue = errors.New("invalid value")

// isReservedAnswer reports whether v is one of the constants that may only
// answer an offer, never make one.
func isReservedAnswer(v string) bool {
	switch v {
	case valueReject, valueIrrelevant, valueNotUnderstood:
		return true
	}
	return false
}

// parseBool decodes a boolean-value ("Yes" or "No", case-sensitive).
func parseBool(v string) (bool, error) {
	switch v {
	case valueYes:
		return true, nil
	case valueNo:
		return false, nil
	}
	return false, errBadValue
}

func formatBool(b bool) string {
	if b {
		return valueYes
	}
	return valueNo
}

// parseNumber decodes a numerical-value: decimal, hex (0x) or base64 (0b)
// constant of at most 64 bits (RFC 7143 §6.1).
func parseNumber(v string) (uint64, error) {
	if len(v) == 0 || len(v) > maxSimpleValue {
		return 0, errBadValue
	}
	if hasBinaryPrefix(v) {
		b, err := decodeBinary(v)
		if err != nil || len(b) == 0 {
			return 0, errBadValue
		}
		// Leading zero bytes do not count towards the 64 bits.
		for len(b) > 8 && b[0] == 0 {
			b = b[1:]
		}
		if len(b) > 8 {
			return 0, errBadValue
		}
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return n, nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, errBadValue
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errBadValue
	}
	return n, nil
}

// parseRange decodes a numerical-value and checks lo <= n <= hi.
func parseRange(v string, lo, hi uint64) (uint64, error) {
	n, err := parseNumber(v)
	if err != nil || n < lo || n > hi {
		return 0, errBadValue
	}
	return n, nil
}

func hasBinaryPrefix(v string) bool {
	return len(v) >= 2 && v[0] == '0' && strings.ContainsRune("xXbB", rune(v[1]))
}

// decodeBinary decodes a binary value: 0x/0X followed by hex digits (an odd
// count implies a leading zero) or 0b/0B followed by base64 (RFC 7143 §6.1).
func decodeBinary(v string) ([]byte, error) {
	if !hasBinaryPrefix(v) || len(v) == 2 {
		return nil, errBadValue
	}
	body := v[2:]
	switch v[1] {
	case 'x', 'X':
		if len(body)%2 == 1 {
			body = "0" + body
		}
		b, err := hex.DecodeString(body)
		if err != nil {
			return nil, errBadValue
		}
		return b, nil
	default:
		enc := base64.StdEncoding
		if !strings.HasSuffix(body, "=") && len(body)%4 != 0 {
			enc = base64.RawStdEncoding
		}
		b, err := enc.Strict().DecodeString(body)
		if err != nil {
			return nil, errBadValue
		}
		return b, nil
	}
}

// encodeHex is the hex-constant form of b, as sent by the target.
func encodeHex(b []byte) string { return "0x" + hex.EncodeToString(b) }

// splitList splits a list-of-values; empty elements are kept so that the
// caller can treat them as unsupported.
func splitList(v string) []string { return strings.Split(v, ",") }
