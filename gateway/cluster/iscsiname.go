package cluster

import (
	"github.com/rbdgw/rbdgw/gateway/config"
)

// maxISCSINameLen is the longest iSCSI name in bytes (RFC 7143 section 4.2.7.1).
const maxISCSINameLen = config.MaxNameLength

// CanonicalISCSIName returns the form names are stored and compared in:
// trimmed and lower case (config.CanonicalName).
func CanonicalISCSIName(name string) string { return config.CanonicalName(name) }

// ValidateISCSIName checks an iSCSI name in canonical form
// (config.ValidateName), reporting ErrInvalid.
func ValidateISCSIName(name string) error {
	if err := config.ValidateName(name); err != nil {
		return invalidf("%v", err)
	}
	return nil
}

// isHex accepts lower-case hex only: names and WWNs are stored canonical.
func isHex(s string) bool { return config.IsLowerHex(s) }
