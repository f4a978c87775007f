package cluster

import (
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// CHAP limits (config.CHAP.Validate explains them).
const (
	MinCHAPSecretLen = config.MinCHAPSecretLength
	MaxCHAPSecretLen = config.MaxCHAPSecretLength
	MaxCHAPUserLen   = config.MaxCHAPUserLength
)

// Name limits.
const (
	maxGatewayNameLen = 253 // a fully qualified host name
	maxGroupNameLen   = 64
	maxPoolNameLen    = 255
	maxImageNameLen   = 255
	// MaxLUNID is the highest LUN number: the 0-255 range of peripheral
	// device addressing, which every initiator understands.
	MaxLUNID = 255
	// maxSerialLen keeps the unit serial inside one VPD 0x80 page.
	maxSerialLen = 64
	wwnHexDigits = 16
	// defaultPhysicalBlockSize is what a disk without a physical block
	// size reports (scsi.DefaultPhysicalBlockSize), and
	// maxBlocksPerPhysical the most logical blocks one physical block may
	// hold (the 4-bit exponent of READ CAPACITY(16)).
	defaultPhysicalBlockSize = 4096
	maxBlocksPerPhysical     = 1 << 15
)

// ValidateCHAP checks one set of CHAP credentials (config.CHAP.Validate).
// field names the credentials in errors ("discovery-auth", "host ... chap");
// secrets are never quoted.
func ValidateCHAP(c *config.CHAP, field string) error {
	if c == nil {
		return nil
	}
	if err := c.Validate(); err != nil {
		return invalidf("%s: %v", field, err)
	}
	// Stored secrets with this prefix are encrypted ones (secrets.go).
	if IsSealed(c.Secret) || IsSealed(c.MutualSecret) {
		return invalidf("%s: a secret may not begin with %q", field, sealedPrefix)
	}
	return nil
}

// validateSimpleName accepts [A-Za-z0-9._-], starting with a letter or digit:
// safe as a key segment, a shell word and a URL path segment.
func validateSimpleName(s, what string, maxLen int) error {
	if s == "" {
		return invalidf("%s is empty", what)
	}
	if len(s) > maxLen {
		return invalidf("%s %q is longer than %d bytes", what, s, maxLen)
	}
	if !isAlnum(s[0]) {
		return invalidf("%s %q must start with a letter or digit", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return invalidf("%s %q contains %q; only letters, digits, '.', '_' and '-' are allowed", what, s, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ValidateGatewayName checks a gateway name (usually the host's FQDN).
func ValidateGatewayName(name string) error {
	return validateSimpleName(name, "gateway name", maxGatewayNameLen)
}

// ValidateDiskID checks "<pool>/<image>".
func ValidateDiskID(id string) error {
	pool, image, ok := SplitDiskID(id)
	if !ok {
		return invalidf("disk %q must be <pool>/<image>", id)
	}
	if err := validateSimpleName(pool, "pool name", maxPoolNameLen); err != nil {
		return err
	}
	return validateSimpleName(image, "image name", maxImageNameLen)
}

// validatePortal checks "ip:port" with a literal IP address: a portal is
// both a listen address and what SendTargets reports to initiators.
func validatePortal(p string) error {
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		return invalidf("portal %q: %v", p, err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" || addr.IsUnspecified() {
		return invalidf("portal %q: host must be a specific IP address", p)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return invalidf("portal %q: port must be 1-65535", p)
	}
	return nil
}

// canonicalPortal spells an address the way Go prints it, so that duplicate
// checks are not fooled by "::1" versus "0:0::1".
func canonicalPortal(p string) string {
	ap, err := netip.ParseAddrPort(p)
	if err != nil {
		return p
	}
	return ap.String()
}

func validateGateway(g *Gateway) error {
	if err := ValidateGatewayName(g.Name); err != nil {
		return err
	}
	if len(g.Portals) == 0 {
		return invalidf("gateway %s: at least one portal is required", g.Name)
	}
	seen := map[string]bool{}
	for i, p := range g.Portals {
		if err := validatePortal(p); err != nil {
			return err
		}
		g.Portals[i] = canonicalPortal(p)
		if seen[g.Portals[i]] {
			return invalidf("gateway %s: portal %s listed twice", g.Name, p)
		}
		seen[g.Portals[i]] = true
	}
	return nil
}

func validateDisk(d *Disk) error {
	if err := ValidateDiskID(d.ID()); err != nil {
		return err
	}
	if d.BlockSize == 0 {
		d.BlockSize = 512
	}
	if d.BlockSize != 512 && d.BlockSize != 4096 {
		return invalidf("disk %s: block size must be 512 or 4096", d.ID())
	}
	if d.Size <= 0 || d.Size%int64(d.BlockSize) != 0 {
		return invalidf("disk %s: size must be a positive multiple of the block size %d", d.ID(), d.BlockSize)
	}
	if p := d.PhysicalBlockSize; p != 0 && (p < d.BlockSize || p&(p-1) != 0 || p/d.BlockSize > maxBlocksPerPhysical) {
		return invalidf("disk %s: physical block size must be a power of two from the block size %d to %d times it",
			d.ID(), d.BlockSize, maxBlocksPerPhysical)
	}
	if d.Serial != "" && (len(d.Serial) > maxSerialLen || !config.PrintableNoSpace(d.Serial)) {
		return invalidf("disk %s: serial must be 1-%d printable ASCII characters without spaces", d.ID(), maxSerialLen)
	}
	if d.WWN != "" && (len(d.WWN) != wwnHexDigits || !isHex(d.WWN)) {
		return invalidf("disk %s: wwn must be %d lower-case hex digits", d.ID(), wwnHexDigits)
	}
	return nil
}

func validateTarget(t *Target) error {
	if err := ValidateISCSIName(t.IQN); err != nil {
		return err
	}
	if err := validateUnique(t.Gateways, "target "+t.IQN+" gateway", ValidateGatewayName); err != nil {
		return err
	}
	slices.Sort(t.Gateways)
	return ValidateCHAP(t.CHAP, "target "+t.IQN+" chap")
}

func validateLUN(l *LUN) error {
	if err := ValidateISCSIName(l.Target); err != nil {
		return err
	}
	if l.ID > MaxLUNID {
		return invalidf("target %s: LUN %d is above %d", l.Target, l.ID, MaxLUNID)
	}
	return ValidateDiskID(l.Disk)
}

func validateHost(h *Host) error {
	if err := ValidateISCSIName(h.Target); err != nil {
		return err
	}
	if err := ValidateISCSIName(h.Initiator); err != nil {
		return err
	}
	if err := validateLUNList(h.LUNs, "host "+h.Initiator); err != nil {
		return err
	}
	slices.Sort(h.LUNs)
	addrs, err := config.CanonicalAddresses(h.Addresses)
	if err != nil {
		return invalidf("host %s addresses: %v", h.Initiator, err)
	}
	h.Addresses = addrs
	return ValidateCHAP(h.CHAP, "host "+h.Initiator+" chap")
}

func validateHostGroup(g *HostGroup) error {
	if err := ValidateISCSIName(g.Target); err != nil {
		return err
	}
	if err := validateSimpleName(g.Name, "host group name", maxGroupNameLen); err != nil {
		return err
	}
	if err := validateUnique(g.Members, "host group "+g.Name+" member", ValidateISCSIName); err != nil {
		return err
	}
	slices.Sort(g.Members)
	if err := validateLUNList(g.LUNs, "host group "+g.Name); err != nil {
		return err
	}
	slices.Sort(g.LUNs)
	return nil
}

func validateLUNList(ids []uint64, owner string) error {
	seen := map[uint64]bool{}
	for _, id := range ids {
		if id > MaxLUNID {
			return invalidf("%s: LUN %d is above %d", owner, id, MaxLUNID)
		}
		if seen[id] {
			return invalidf("%s: LUN %d listed twice", owner, id)
		}
		seen[id] = true
	}
	return nil
}

func validateUnique(items []string, what string, check func(string) error) error {
	seen := map[string]bool{}
	for _, it := range items {
		if err := check(it); err != nil {
			return err
		}
		if seen[it] {
			return invalidf("%s %s listed twice", what, it)
		}
		seen[it] = true
	}
	return nil
}

// validateSettings checks the tuning against config.TuningLimits, the same
// rule a configuration file is held to; zero keeps the daemon's default.
func validateSettings(s *Settings) error {
	if err := s.Tuning.Validate(); err != nil {
		return invalidf("settings: %v", err)
	}
	return nil
}
