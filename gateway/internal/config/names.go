package config

import (
	"fmt"
	"strings"
)

// ValidateName checks an iSCSI name (RFC 7143 §4.2.7): the iqn., eui. and
// naa. formats, at most 223 bytes, lower case after stringprep (we accept
// only the ASCII subset every initiator produces).
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("iSCSI name is empty")
	}
	if len(name) > 223 {
		return fmt.Errorf("iSCSI name is longer than 223 bytes")
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':'
		if !ok {
			return fmt.Errorf("iSCSI name %q: character %q not allowed (lower-case letters, digits, '-', '.', ':')", name, r)
		}
	}
	switch {
	case strings.HasPrefix(name, "iqn."):
		return validateIQN(name)
	case strings.HasPrefix(name, "eui."):
		return validateHexName(name, "eui.", 16, 16)
	case strings.HasPrefix(name, "naa."):
		return validateHexName(name, "naa.", 16, 32)
	}
	return fmt.Errorf("iSCSI name %q: must start with \"iqn.\", \"eui.\" or \"naa.\"", name)
}

// validateIQN checks "iqn.YYYY-MM.reversed.domain[:anything]".
func validateIQN(name string) error {
	rest := name[len("iqn."):]
	if len(rest) < 8 || rest[4] != '-' || rest[7] != '.' {
		return fmt.Errorf("iSCSI name %q: expected iqn.YYYY-MM.<reversed domain>[:<unique>]", name)
	}
	for i, c := range rest[:7] {
		if i != 4 && (c < '0' || c > '9') {
			return fmt.Errorf("iSCSI name %q: date must be YYYY-MM", name)
		}
	}
	if m := rest[5:7]; m < "01" || m > "12" {
		return fmt.Errorf("iSCSI name %q: month %s out of range", name, m)
	}
	domain := rest[8:]
	if i := strings.IndexByte(domain, ':'); i >= 0 {
		domain = domain[:i]
	}
	if domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return fmt.Errorf("iSCSI name %q: naming authority must be a reversed domain name", name)
	}
	return nil
}

func validateHexName(name, prefix string, minDigits, maxDigits int) error {
	hex := name[len(prefix):]
	if len(hex) < minDigits || len(hex) > maxDigits || len(hex)%2 != 0 && prefix == "naa." {
		return fmt.Errorf("iSCSI name %q: %s names carry %d..%d hex digits", name, strings.TrimSuffix(prefix, "."), minDigits, maxDigits)
	}
	if strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("iSCSI name %q: not hexadecimal", name)
	}
	return nil
}
