// Package config is the configuration model of a gateway: targets, portals,
// disks, LUN maps, ACLs, CHAP and discovery authentication. In standalone
// mode it is read from a YAML or JSON file; in cluster mode the etcd store
// produces the same model. The reconciler applies a model to the running
// target.
package config

// Config is everything a gateway runs from.
type Config struct {
	// Portals are the addresses this gateway listens on ("127.0.0.1:3260").
	Portals []string `json:"portals" yaml:"portals"`
	// DiscoveryAuth, when set, requires CHAP on discovery sessions.
	DiscoveryAuth *CHAP `json:"discovery_auth,omitempty" yaml:"discovery_auth,omitempty"`
	// Disks are the backing images, referenced by name from LUN maps.
	Disks []Disk `json:"disks" yaml:"disks"`
	// Targets are the iSCSI targets this gateway presents.
	Targets []Target `json:"targets" yaml:"targets"`
	// Tuning holds session parameters and timers; zero values take defaults.
	Tuning Tuning `json:"tuning,omitempty" yaml:"tuning,omitempty"`
}

// Disk is one backing image.
type Disk struct {
	Name string `json:"name" yaml:"name"`
	// Backend is "memory", "file" or "rbd".
	Backend string `json:"backend" yaml:"backend"`
	// Size in bytes (memory: the size; file/rbd: created with this size when
	// missing, 0 means use the existing size).
	Size int64 `json:"size,omitempty" yaml:"size,omitempty"`
	// Path of the image file (file backend).
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Pool and Image name the RBD image (rbd backend).
	Pool  string `json:"pool,omitempty" yaml:"pool,omitempty"`
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// BlockSize of the LUN: 512 (default) or 4096.
	BlockSize uint32 `json:"block_size,omitempty" yaml:"block_size,omitempty"`
	// PhysicalBlockSize is the physical block size reported to initiators so
	// that they align their I/O: a power of two multiple of BlockSize, at
	// most 2^15 blocks. 0 means 4096 (or BlockSize when larger), the unit
	// RBD allocates in.
	PhysicalBlockSize uint32 `json:"physical_block_size,omitempty" yaml:"physical_block_size,omitempty"`
	// Serial is the unit serial number (VPD 0x80); generated from the name when empty.
	Serial string `json:"serial,omitempty" yaml:"serial,omitempty"`
	// WWN is the 16-hex-digit NAA-6 vendor-specific identifier part. When
	// empty, the gateway draws one at random the first time and records it
	// in its state directory (derives it from the name without one; see
	// docs/adr/0005-default-wwns.md). It must be identical on every gateway.
	WWN string `json:"wwn,omitempty" yaml:"wwn,omitempty"`
	// ReadOnly LUNs refuse writes with DATA PROTECT.
	ReadOnly bool `json:"read_only,omitempty" yaml:"read_only,omitempty"`
}

// Target is one iSCSI target (an IQN).
type Target struct {
	IQN string `json:"iqn" yaml:"iqn"`
	// LUNs maps LUN numbers to disks.
	LUNs []LUN `json:"luns" yaml:"luns"`
	// ACLs lists the initiators allowed to log in. Empty with
	// AllowAnyInitiator false means nobody may log in.
	ACLs []ACL `json:"acls" yaml:"acls"`
	// AllowAnyInitiator lets every initiator in (demo mode); CHAP still applies
	// when CHAP is set.
	AllowAnyInitiator bool `json:"allow_any_initiator,omitempty" yaml:"allow_any_initiator,omitempty"`
	// CHAP for initiators without their own ACL credentials (and for all
	// initiators when AllowAnyInitiator is set).
	CHAP *CHAP `json:"chap,omitempty" yaml:"chap,omitempty"`
	// TPGT is this gateway's portal group tag for the target (default 1).
	TPGT uint16 `json:"tpgt,omitempty" yaml:"tpgt,omitempty"`
}

// LUN maps a LUN number to a disk.
type LUN struct {
	ID   uint64 `json:"id" yaml:"id"`
	Disk string `json:"disk" yaml:"disk"`
}

// ACL admits one initiator, optionally with its own CHAP credentials and
// only from some source addresses, and says which LUNs of the target it
// sees (LUN masking).
type ACL struct {
	InitiatorIQN string `json:"initiator" yaml:"initiator"`
	CHAP         *CHAP  `json:"chap,omitempty" yaml:"chap,omitempty"`
	// LUNs is the initiator's view: absent (nil) means every LUN of the
	// target, as configuration files written before masking existed
	// expect; a list, even an empty one ("luns: []"), means exactly those
	// LUN ids, each of which the target must map. A pointer, so that an
	// empty list survives encoding and decoding in both JSON and YAML
	// (a nil slice and an empty one would not). Use View and SetView.
	LUNs *[]uint64 `json:"luns,omitempty" yaml:"luns,omitempty"`
	// Addresses are the source addresses the initiator may log in from: IP
	// addresses or CIDRs (ParseAddress), at most MaxAddresses. Empty means
	// any address. A login from elsewhere is refused as an authorization
	// failure, and discovery does not list the target to it.
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
}

// View returns the LUN ids the initiator sees, and all=true when it sees
// every LUN of the target (no list).
func (a ACL) View() (ids []uint64, all bool) {
	if a.LUNs == nil {
		return nil, true
	}
	return *a.LUNs, false
}

// SetView sets an explicit view, a copy of ids; nil or empty means none.
func (a *ACL) SetView(ids []uint64) {
	v := append([]uint64{}, ids...)
	a.LUNs = &v
}

// CHAP credentials: User/Secret authenticate the initiator; MutualUser/
// MutualSecret, when set, authenticate the target to the initiator.
type CHAP struct {
	User         string `json:"user" yaml:"user"`
	Secret       string `json:"secret" yaml:"secret"`
	MutualUser   string `json:"mutual_user,omitempty" yaml:"mutual_user,omitempty"`
	MutualSecret string `json:"mutual_secret,omitempty" yaml:"mutual_secret,omitempty"`
}

// Tuning holds session parameters the target offers and timers.
type Tuning struct {
	QueueDepth               int `json:"queue_depth,omitempty" yaml:"queue_depth,omitempty"`                                   // CmdSN window, default 128
	MaxRecvDataSegmentLength int `json:"max_recv_data_segment_length,omitempty" yaml:"max_recv_data_segment_length,omitempty"` // default 262144
	MaxBurstLength           int `json:"max_burst_length,omitempty" yaml:"max_burst_length,omitempty"`                         // default 1048576
	FirstBurstLength         int `json:"first_burst_length,omitempty" yaml:"first_burst_length,omitempty"`                     // default 262144
	MaxOutstandingR2T        int `json:"max_outstanding_r2t,omitempty" yaml:"max_outstanding_r2t,omitempty"`                   // default 4
	MaxConnections           int `json:"max_connections,omitempty" yaml:"max_connections,omitempty"`                           // default 1
	NopInIntervalSeconds     int `json:"nopin_interval,omitempty" yaml:"nopin_interval,omitempty"`                             // default 10
	NopInTimeoutSeconds      int `json:"nopin_timeout,omitempty" yaml:"nopin_timeout,omitempty"`                               // default 30
	// PreferDigests makes the target choose CRC32C header and data digests
	// whenever the initiator lists CRC32C, even after None (RFC 7143 lets
	// the responder disallow None). Off: the initiator's order decides.
	PreferDigests bool `json:"prefer_digests,omitempty" yaml:"prefer_digests,omitempty"`

	// Bounds against hostile or broken initiators (TuningLimits says what
	// each does).
	DataOutTimeoutSeconds       int `json:"dataout_timeout,omitempty" yaml:"dataout_timeout,omitempty"`                 // default 30
	DiscoveryIdleTimeoutSeconds int `json:"discovery_idle_timeout,omitempty" yaml:"discovery_idle_timeout,omitempty"`   // default 30
	ConnectionBufferMiB         int `json:"connection_buffer_mib,omitempty" yaml:"connection_buffer_mib,omitempty"`     // default 32
	GatewayBufferMiB            int `json:"gateway_buffer_mib,omitempty" yaml:"gateway_buffer_mib,omitempty"`           // default 1024
	ConnectionLimit             int `json:"connection_limit,omitempty" yaml:"connection_limit,omitempty"`               // default 4096
	ConnectionsPerAddress       int `json:"connections_per_address,omitempty" yaml:"connections_per_address,omitempty"` // default 256
	SessionsPerInitiator        int `json:"sessions_per_initiator,omitempty" yaml:"sessions_per_initiator,omitempty"`   // default 256
	// TargetReset says what TARGET WARM RESET and TARGET COLD RESET from
	// an initiator do: "session" (default), "target" or "refuse" (see the
	// TargetReset constants).
	TargetReset string `json:"target_reset,omitempty" yaml:"target_reset,omitempty"`
}
