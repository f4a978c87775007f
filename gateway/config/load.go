package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults of the model outside Tuning (tuning.go has the tuning ones).
const (
	DefaultBlockSize = 512
	DefaultTPGT      = 1
)

// Load reads a configuration file. Files ending in .json are JSON, others
// YAML (a JSON document is valid YAML too). Unknown fields are errors so a
// typo never silently drops a setting.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(raw, strings.EqualFold(filepath.Ext(path), ".json"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and validates a configuration document.
func Parse(raw []byte, isJSON bool) (*Config, error) {
	var cfg Config
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// ApplyDefaults fills zero values with the defaults.
func (c *Config) ApplyDefaults() {
	c.Tuning = c.Tuning.WithDefaults()
	for i := range c.Disks {
		if c.Disks[i].BlockSize == 0 {
			c.Disks[i].BlockSize = DefaultBlockSize
		}
	}
	for i := range c.Targets {
		if c.Targets[i].TPGT == 0 {
			c.Targets[i].TPGT = DefaultTPGT
		}
	}
}

// Validate checks the whole model and reports the first problem found,
// naming the entity so an operator can find it.
func (c *Config) Validate() error {
	if len(c.Portals) == 0 {
		return fmt.Errorf("portals: at least one listen address is required")
	}
	for _, p := range c.Portals {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return fmt.Errorf("portal %q: %v", p, err)
		}
	}
	if err := c.Tuning.Validate(); err != nil {
		return fmt.Errorf("tuning: %w", err)
	}
	if c.DiscoveryAuth != nil {
		if err := c.DiscoveryAuth.Validate(); err != nil {
			return fmt.Errorf("discovery_auth: %w", err)
		}
	}
	disks := map[string]bool{}
	for _, d := range c.Disks {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("disk %q: %w", d.Name, err)
		}
		if disks[d.Name] {
			return fmt.Errorf("disk %q: defined twice", d.Name)
		}
		disks[d.Name] = true
	}
	iqns := map[string]bool{}
	for _, t := range c.Targets {
		if err := ValidateName(t.IQN); err != nil {
			return fmt.Errorf("target %q: %w", t.IQN, err)
		}
		if iqns[t.IQN] {
			return fmt.Errorf("target %q: defined twice", t.IQN)
		}
		iqns[t.IQN] = true
		if t.CHAP != nil {
			if err := t.CHAP.Validate(); err != nil {
				return fmt.Errorf("target %q: chap: %w", t.IQN, err)
			}
		}
		luns := map[uint64]bool{}
		for _, l := range t.LUNs {
			if l.ID > 16383 {
				return fmt.Errorf("target %q: lun %d: LUN ids go up to 16383", t.IQN, l.ID)
			}
			if luns[l.ID] {
				return fmt.Errorf("target %q: lun %d: mapped twice", t.IQN, l.ID)
			}
			luns[l.ID] = true
			if !disks[l.Disk] {
				return fmt.Errorf("target %q: lun %d: unknown disk %q", t.IQN, l.ID, l.Disk)
			}
		}
		hosts := map[string]bool{}
		for _, a := range t.ACLs {
			if err := ValidateName(a.InitiatorIQN); err != nil {
				return fmt.Errorf("target %q: acl %q: %w", t.IQN, a.InitiatorIQN, err)
			}
			if hosts[a.InitiatorIQN] {
				return fmt.Errorf("target %q: acl %q: listed twice", t.IQN, a.InitiatorIQN)
			}
			hosts[a.InitiatorIQN] = true
			if a.CHAP != nil {
				if err := a.CHAP.Validate(); err != nil {
					return fmt.Errorf("target %q: acl %q: chap: %w", t.IQN, a.InitiatorIQN, err)
				}
			}
			if err := a.validateView(luns); err != nil {
				return fmt.Errorf("target %q: acl %q: %w", t.IQN, a.InitiatorIQN, err)
			}
			if _, err := ParseAddresses(a.Addresses); err != nil {
				return fmt.Errorf("target %q: acl %q: addresses: %w", t.IQN, a.InitiatorIQN, err)
			}
		}
	}
	return nil
}

// Validate checks one disk definition.
func (d *Disk) Validate() error {
	if d.Name == "" {
		return fmt.Errorf("name is required")
	}
	if d.BlockSize != 512 && d.BlockSize != 4096 {
		return fmt.Errorf("block_size %d: must be 512 or 4096", d.BlockSize)
	}
	if p := d.PhysicalBlockSize; p != 0 && (p < d.BlockSize || p&(p-1) != 0 || p/d.BlockSize > 1<<15) {
		return fmt.Errorf("physical_block_size %d: must be a power of two from the block size to 2^15 blocks", p)
	}
	if d.Size < 0 || d.Size%int64(d.BlockSize) != 0 {
		return fmt.Errorf("size %d: must be a non-negative multiple of the block size", d.Size)
	}
	switch d.Backend {
	case "memory":
		if d.Size == 0 {
			return fmt.Errorf("memory disk needs a size")
		}
	case "file":
		if d.Path == "" {
			return fmt.Errorf("file disk needs a path")
		}
	case "rbd":
		if d.Pool == "" || d.Image == "" {
			return fmt.Errorf("rbd disk needs pool and image")
		}
	default:
		return fmt.Errorf("backend %q: must be memory, file or rbd", d.Backend)
	}
	if d.WWN != "" {
		if len(d.WWN) != 16 || strings.Trim(strings.ToLower(d.WWN), "0123456789abcdef") != "" {
			return fmt.Errorf("wwn %q: must be 16 hex digits", d.WWN)
		}
	}
	if len(d.Serial) > 64 {
		return fmt.Errorf("serial: at most 64 characters")
	}
	return nil
}

// CHAP limits. Secrets are 12 to 16 bytes: the Microsoft iSCSI initiator
// refuses secrets shorter than 12 bytes (96 bits) on connections without
// IPsec and longer than 16 bytes on any connection; RFC 7143 §9.2.1 likewise
// asks for at least 96 random bits without IPsec. Linux open-iscsi and ESXi
// accept longer ones, so 12-16 is what every initiator can use. Secrets and
// user names are printable ASCII without spaces so that they travel
// unchanged through iSCSI text keys, configuration files and command lines.
const (
	MinCHAPSecretLength = 12
	MaxCHAPSecretLength = 16
	MaxCHAPUserLength   = 255
)

// Validate checks CHAP credentials. Errors name the field, never the
// secret.
func (c *CHAP) Validate() error {
	if err := validateCHAPUser(c.User, "user"); err != nil {
		return err
	}
	if err := validateCHAPSecret(c.Secret, "secret"); err != nil {
		return err
	}
	if c.MutualUser == "" && c.MutualSecret == "" {
		return nil
	}
	if c.MutualUser == "" || c.MutualSecret == "" {
		return fmt.Errorf("mutual CHAP needs both mutual_user and mutual_secret")
	}
	if err := validateCHAPUser(c.MutualUser, "mutual_user"); err != nil {
		return err
	}
	if err := validateCHAPSecret(c.MutualSecret, "mutual_secret"); err != nil {
		return err
	}
	// RFC 7143 §9.2.1: a secret that authenticates initiators must not
	// authenticate targets (else a reflected challenge proves nothing).
	if c.MutualSecret == c.Secret {
		return fmt.Errorf("mutual_secret must differ from secret")
	}
	return nil
}

func validateCHAPUser(user, field string) error {
	switch {
	case user == "":
		return fmt.Errorf("%s is empty", field)
	case len(user) > MaxCHAPUserLength:
		return fmt.Errorf("%s is longer than %d bytes", field, MaxCHAPUserLength)
	case !PrintableNoSpace(user) || strings.Contains(user, "="):
		return fmt.Errorf("%s must be printable ASCII without spaces or '='", field)
	}
	return nil
}

func validateCHAPSecret(secret, field string) error {
	if n := len(secret); n < MinCHAPSecretLength || n > MaxCHAPSecretLength {
		return fmt.Errorf("%s must be %d to %d characters (is %d)", field, MinCHAPSecretLength, MaxCHAPSecretLength, n)
	}
	if !PrintableNoSpace(secret) {
		return fmt.Errorf("%s must be printable ASCII without spaces", field)
	}
	return nil
}

// PrintableNoSpace reports whether s is printable ASCII without spaces.
func PrintableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
