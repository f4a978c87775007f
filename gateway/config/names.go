package config

import (
	"fmt"
	"strings"
)

// MaxNameLength is the longest iSCSI name in bytes (RFC 7143 §4.2.7.1).
const MaxNameLength = 223

// CanonicalName returns the form iSCSI names are stored and compared in:
// trimmed and lower case. RFC 3722's stringprep profile folds case, so
// "eui.02004567A425678D" and "eui.02004567a425678d" are the same node.
func CanonicalName(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// ValidateName checks an iSCSI name in canonical form against the three
// formats of RFC 7143 §4.2.7 (and RFC 3980 for naa.):
//
//	iqn.yyyy-mm.<reversed domain>[:<unique string>]
//	eui.<16 hex digits>
//	naa.<16 or 32 hex digits>
//
// Only the ASCII subset RFC 3722 leaves after normalisation is accepted:
// lower-case letters, digits, '-', '.' and ':'.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("iSCSI name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("iSCSI name is %d bytes, longer than %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return fmt.Errorf("iSCSI name %q contains %q; only a-z, 0-9, '-', '.' and ':' are allowed", name, name[i])
		}
	}
	switch {
	case strings.HasPrefix(name, "iqn."):
		return validateIQN(name)
	case strings.HasPrefix(name, "eui."):
		return validateHexName(name, "eui.", 16)
	case strings.HasPrefix(name, "naa."):
		return validateHexName(name, "naa.", 16, 32)
	}
	return fmt.Errorf("iSCSI name %q must start with \"iqn.\", \"eui.\" or \"naa.\"", name)
}

func validateIQN(name string) error {
	rest := name[len("iqn."):]
	// Date the naming authority owned its domain: yyyy-mm.
	if len(rest) < len("yyyy-mm.") || rest[4] != '-' || rest[7] != '.' ||
		!allDigits(rest[:4]) || !allDigits(rest[5:7]) {
		return fmt.Errorf("iSCSI name %q: expected iqn.yyyy-mm.<reversed domain>[:<unique>]", name)
	}
	if month := (rest[5]-'0')*10 + rest[6] - '0'; month < 1 || month > 12 {
		return fmt.Errorf("iSCSI name %q: month must be 01-12", name)
	}
	authority, unique, hasUnique := strings.Cut(rest[len("yyyy-mm."):], ":")
	if authority == "" {
		return fmt.Errorf("iSCSI name %q: naming authority (reversed domain) is missing", name)
	}
	for label := range strings.SplitSeq(authority, ".") {
		if label == "" {
			return fmt.Errorf("iSCSI name %q: empty label in the naming authority", name)
		}
	}
	if hasUnique && unique == "" {
		return fmt.Errorf("iSCSI name %q: nothing after ':'", name)
	}
	return nil
}

func validateHexName(name, prefix string, lengths ...int) error {
	hex := name[len(prefix):]
	for _, n := range lengths {
		if len(hex) == n && IsLowerHex(hex) {
			return nil
		}
	}
	if len(lengths) == 1 {
		return fmt.Errorf("iSCSI name %q: %s needs exactly %d hex digits", name, prefix, lengths[0])
	}
	return fmt.Errorf("iSCSI name %q: %s needs %d or %d hex digits", name, prefix, lengths[0], lengths[1])
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsLowerHex accepts non-empty lower-case hex only: names and WWNs are
// stored canonical.
func IsLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}
