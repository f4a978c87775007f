// Package model holds the JSON documents of the REST API (/api/v1): what
// requests carry and responses return. It is pure (no etcd, no Ceph), so
// clients such as gwcli decode responses with the same types the server
// encodes them with.
package model

import "time"

// Masked stands for a secret in every response: secrets are write-only.
// Sent back in a write, it means "keep the stored secret".
const Masked = "***"

// Error is the body of every error response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries a stable machine code (see the Code constants) and a
// message for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details name the gateways still pending, the current revision, ...
	Details map[string]any `json:"details,omitempty"`
}

// Error codes: stable, for automation to branch on.
const (
	CodeInvalid            = "invalid"               // 400: a value failed validation
	CodeMalformed          = "malformed"             // 400: the body is not the JSON expected
	CodeUnauthenticated    = "unauthenticated"       // 401
	CodeForbidden          = "forbidden"             // 403
	CodeNotFound           = "not_found"             // 404
	CodeMethodNotAllowed   = "method_not_allowed"    // 405
	CodeExists             = "exists"                // 409: a create found it there
	CodeInUse              = "in_use"                // 409: still referenced
	CodeConflict           = "conflict"              // 409: a concurrent change won
	CodePreconditionFailed = "precondition_failed"   // 412: If-Match did not match
	CodeTooLarge           = "too_large"             // 413: body above the limit
	CodeUnsupportedMedia   = "unsupported_media"     // 415
	CodeUnavailable        = "unavailable"           // 503: etcd or Ceph unreachable
	CodeCeph               = "ceph_error"            // 502: Ceph refused the operation
	CodeInternal           = "internal"              // 500
	CodeTimeout            = "timeout"               // 504
	CodeSchema             = "unsupported_schema"    // 503: the cluster was written by a newer build
	CodeChangeTooLarge     = "change_too_large"      // 400: more keys than one transaction holds
	CodeNotApplied         = "not_applied"           // 202 body detail: wait=applied timed out
	CodeCephNotConfigured  = "ceph_not_configured"   // 501: this gateway has no Ceph client
	CodeImageExists        = "image_exists"          // 409: create of an image that exists
	CodeImageMissing       = "image_not_found"       // 404: import of an image that does not exist
	CodeExclusiveLockFeat  = "exclusive_lock_needed" // 400: image lacks exclusive-lock
)

// CHAP credentials. In responses the secrets are Masked.
type CHAP struct {
	User         string `json:"user"`
	Secret       string `json:"secret"`
	MutualUser   string `json:"mutual_user,omitempty"`
	MutualSecret string `json:"mutual_secret,omitempty"`
}

// Gateway is a gateway node: its configuration and what it last published.
type Gateway struct {
	Name    string   `json:"name"`
	Portals []string `json:"portals"`
	TPGID   uint16   `json:"tpg_id"`
	// Targets lists the targets this gateway serves.
	Targets []string `json:"targets"`
	// Live is true while the gateway's liveness lease is held.
	Live bool `json:"live"`
	// The fields below are what the gateway published; empty when down.
	Version         string     `json:"version,omitempty"`
	Started         *time.Time `json:"started,omitempty"`
	UptimeSeconds   int64      `json:"uptime_seconds,omitempty"`
	AppliedRevision int64      `json:"applied_revision,omitempty"`
	// AppliedComplete is false while part of the applied configuration
	// failed (an image that did not open); the gateway retries it.
	AppliedComplete bool   `json:"applied_complete,omitempty"`
	APIURL          string `json:"api_url,omitempty"`
	Sessions        int    `json:"sessions"`
}

// GatewayPut creates or replaces a gateway.
type GatewayPut struct {
	Portals []string `json:"portals"`
	// TPGID 0 keeps the current id or allocates the lowest free one.
	TPGID uint16 `json:"tpg_id,omitempty"`
}

// Disk is an RBD image exported as a LUN.
type Disk struct {
	ID    string `json:"id"` // "<pool>/<image>"
	Pool  string `json:"pool"`
	Image string `json:"image"`
	// Size is the configured size in bytes; ImageSize what Ceph reports
	// (absent when Ceph could not be asked).
	Size      int64  `json:"size"`
	ImageSize *int64 `json:"image_size,omitempty"`
	BlockSize uint32 `json:"block_size"`
	// PhysicalBlockSize is what initiators align their I/O to.
	PhysicalBlockSize uint32 `json:"physical_block_size"`
	Serial            string `json:"serial"`
	WWN               string `json:"wwn"`
	ReadOnly          bool   `json:"read_only"`
	// Features, LockOwners and Watchers come from Ceph (absent when it
	// could not be asked).
	Features   []string `json:"features,omitempty"`
	LockOwners []string `json:"lock_owners,omitempty"`
	// Mapping is the LUN exporting the disk, if any.
	Mapping *DiskMapping `json:"mapping,omitempty"`
	// Owner is the gateway reporting the disk Active/Optimized.
	Owner      string `json:"owner,omitempty"`
	OwnerEpoch uint64 `json:"owner_epoch,omitempty"`
	// CephError says why the Ceph fields are missing.
	CephError string `json:"ceph_error,omitempty"`
}

// DiskMapping names the target LUN of a disk.
type DiskMapping struct {
	Target string `json:"target"`
	LUN    uint64 `json:"lun"`
}

// DiskPut creates a disk (a new image: Size given), imports one (an
// existing image: Size absent, read from Ceph), or changes one (grow,
// read-only).
type DiskPut struct {
	// Size in bytes, or a string with a unit ("90G", "512M", "1T"; binary
	// units). Absent: import the existing image at its size.
	Size      *Size  `json:"size,omitempty"`
	BlockSize uint32 `json:"block_size,omitempty"`
	// PhysicalBlockSize: a power of two multiple of the block size (4096
	// by default, the unit RBD allocates in); fixed at creation.
	PhysicalBlockSize uint32 `json:"physical_block_size,omitempty"`
	ReadOnly          bool   `json:"read_only,omitempty"`
	// Image creation options, used only when the image is created.
	Features   []string `json:"features,omitempty"`
	DataPool   string   `json:"data_pool,omitempty"`
	ObjectSize *Size    `json:"object_size,omitempty"`
	// Serial and WWN are generated when empty.
	Serial string `json:"serial,omitempty"`
	WWN    string `json:"wwn,omitempty"`
}

// Snapshot of an image.
type Snapshot struct {
	Name string `json:"name"`
	ID   uint64 `json:"id"`
	Size int64  `json:"size"`
}

// SnapshotCreate names a new snapshot.
type SnapshotCreate struct {
	Name string `json:"name"`
}

// Target is an iSCSI target presented by its gateways.
type Target struct {
	IQN               string   `json:"iqn"`
	Gateways          []string `json:"gateways"`
	AllowAnyInitiator bool     `json:"allow_any_initiator"`
	CHAP              *CHAP    `json:"chap,omitempty"`
	LUNs              []LUN    `json:"luns"`
	Hosts             []string `json:"hosts"`
	HostGroups        []string `json:"host_groups"`
}

// TargetPut creates or replaces a target's own settings (not its LUNs,
// hosts or groups).
type TargetPut struct {
	Gateways          []string `json:"gateways"`
	AllowAnyInitiator bool     `json:"allow_any_initiator,omitempty"`
	CHAP              *CHAP    `json:"chap,omitempty"`
}

// TargetGatewayPut adds a gateway to a target, creating the gateway when
// it does not exist yet (Portals are then required). Portals that differ
// from a registered gateway's are refused.
type TargetGatewayPut struct {
	Portals []string `json:"portals,omitempty"`
}

// LUN of a target.
type LUN struct {
	ID   uint64 `json:"id"`
	Disk string `json:"disk"`
	// Owner is the gateway reporting it Active/Optimized.
	Owner string `json:"owner,omitempty"`
	Size  int64  `json:"size,omitempty"`
}

// LUNPut maps a disk to a LUN id (PUT .../luns/{id}) or to the lowest free
// id (POST .../luns, ID absent).
type LUNPut struct {
	Disk string  `json:"disk"`
	ID   *uint64 `json:"id,omitempty"`
}

// Host is an initiator admitted to a target.
type Host struct {
	Initiator string `json:"initiator"`
	CHAP      *CHAP  `json:"chap,omitempty"`
	// LUNs the host sees: its own list, or its group's. Empty: none.
	LUNs []uint64 `json:"luns"`
	// Addresses the initiator may log in from (IP addresses or CIDRs);
	// empty: any.
	Addresses []string `json:"addresses"`
	Group     string   `json:"group,omitempty"`
	// LoggedIn lists the gateways where the initiator has a session.
	LoggedIn []string `json:"logged_in"`
}

// HostPut creates or replaces a host. LUNs is the explicit list of LUN ids
// it sees; empty or absent means none.
type HostPut struct {
	CHAP      *CHAP    `json:"chap,omitempty"`
	LUNs      []uint64 `json:"luns,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// HostGroup gives several hosts the same LUNs.
type HostGroup struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	LUNs    []uint64 `json:"luns"`
}

// HostGroupPut creates or replaces a host group.
type HostGroupPut struct {
	Members []string `json:"members,omitempty"`
	LUNs    []uint64 `json:"luns,omitempty"`
}

// Settings are the cluster-wide tunables.
type Settings struct {
	Tuning Tuning `json:"tuning"`
}

// Tuning mirrors the session parameters every gateway offers (0: default).
type Tuning struct {
	QueueDepth               int  `json:"queue_depth,omitempty"`
	MaxRecvDataSegmentLength int  `json:"max_recv_data_segment_length,omitempty"`
	MaxBurstLength           int  `json:"max_burst_length,omitempty"`
	FirstBurstLength         int  `json:"first_burst_length,omitempty"`
	MaxOutstandingR2T        int  `json:"max_outstanding_r2t,omitempty"`
	MaxConnections           int  `json:"max_connections,omitempty"`
	NopInIntervalSeconds     int  `json:"nopin_interval,omitempty"`
	NopInTimeoutSeconds      int  `json:"nopin_timeout,omitempty"`
	PreferDigests            bool `json:"prefer_digests,omitempty"`
	// Bounds against hostile or broken initiators (docs/operations.md).
	DataOutTimeoutSeconds       int    `json:"dataout_timeout,omitempty"`
	DiscoveryIdleTimeoutSeconds int    `json:"discovery_idle_timeout,omitempty"`
	ConnectionBufferMiB         int    `json:"connection_buffer_mib,omitempty"`
	GatewayBufferMiB            int    `json:"gateway_buffer_mib,omitempty"`
	ConnectionLimit             int    `json:"connection_limit,omitempty"`
	ConnectionsPerAddress       int    `json:"connections_per_address,omitempty"`
	SessionsPerInitiator        int    `json:"sessions_per_initiator,omitempty"`
	TargetReset                 string `json:"target_reset,omitempty"`
}

// Session is one logged-in iSCSI session on one gateway.
type Session struct {
	Gateway       string    `json:"gateway"`
	Target        string    `json:"target"`
	Initiator     string    `json:"initiator"`
	ISID          string    `json:"isid"`
	TSIH          uint16    `json:"tsih"`
	Portal        string    `json:"portal"`
	RemoteAddress string    `json:"remote_address"`
	LoginTime     time.Time `json:"login_time"`
	HeaderDigest  string    `json:"header_digest"`
	DataDigest    string    `json:"data_digest"`
	// Negotiated sizes in bytes: the initiator's receive limit (the
	// largest segment the gateway sends) and the gateway's.
	MaxRecvDataSegmentLength       int      `json:"max_recv_data_segment_length"`
	TargetMaxRecvDataSegmentLength int      `json:"target_max_recv_data_segment_length"`
	MaxBurstLength                 int      `json:"max_burst_length"`
	FirstBurstLength               int      `json:"first_burst_length"`
	ImmediateData                  bool     `json:"immediate_data"`
	InitialR2T                     bool     `json:"initial_r2t"`
	AuthMethod                     string   `json:"auth_method"`
	LUNs                           []uint64 `json:"luns"`
}

// Sessions lists sessions, with the gateways that could not be asked.
type Sessions struct {
	Sessions []Session `json:"sessions"`
	// Down lists gateways whose sessions are unknown (not live).
	Down []string `json:"down"`
}

// Connection is what an attach needs to log in (OpenStack os-brick's
// connection properties): every live gateway portal of the target.
type Connection struct {
	DriverVolumeType string         `json:"driver_volume_type"`
	Data             ConnectionData `json:"data"`
}

// ConnectionData follows os-brick's iSCSI connection properties.
type ConnectionData struct {
	TargetDiscovered bool     `json:"target_discovered"`
	TargetIQN        string   `json:"target_iqn"`
	TargetPortal     string   `json:"target_portal"`
	TargetLUN        uint64   `json:"target_lun"`
	TargetPortals    []string `json:"target_portals"`
	TargetIQNs       []string `json:"target_iqns"`
	TargetLUNs       []uint64 `json:"target_luns"`
	AuthMethod       string   `json:"auth_method,omitempty"`
	AuthUsername     string   `json:"auth_username,omitempty"`
	AuthPassword     string   `json:"auth_password,omitempty"`
	// Mutual CHAP (os-brick: discovery_auth is not used).
	TargetUsername string `json:"target_username,omitempty"`
	TargetPassword string `json:"target_password,omitempty"`
}

// WriteResult answers every write.
type WriteResult struct {
	// Revision is the etcd revision of the commit (the ETag of what it
	// wrote); the current revision for a dry run or a change that changed
	// nothing.
	Revision int64 `json:"revision"`
	DryRun   bool  `json:"dry_run,omitempty"`
	// Changes lists the keys written or deleted, secrets masked.
	Changes []Change `json:"changes"`
	// Applied is set with ?wait=applied.
	Applied *Applied `json:"applied,omitempty"`
	// Parts is the number of transactions the write took when more than
	// one: a target with more LUN maps, hosts and groups than one etcd
	// transaction holds is deleted in parts.
	Parts int `json:"parts,omitempty"`
}

// Change is one key a write puts or deletes.
type Change struct {
	Op    string `json:"op"` // "put" or "delete"
	Key   string `json:"key"`
	Value any    `json:"value,omitempty"`
}

// Applied reports which gateways have applied a revision.
type Applied struct {
	Done bool `json:"done"`
	// Gateways that applied it, that are still pending, and that are down
	// (not waited for; they apply it when they return).
	Gateways []string `json:"gateways"`
	Pending  []string `json:"pending"`
	Down     []string `json:"down"`
}

// Cluster is the Ceph cluster's state.
type Cluster struct {
	FSID     string        `json:"fsid"`
	Health   string        `json:"health"`
	Checks   []HealthCheck `json:"checks"`
	Mons     int           `json:"mons"`
	Quorum   int           `json:"quorum"`
	OSDs     int           `json:"osds"`
	OSDsUp   int           `json:"osds_up"`
	OSDsIn   int           `json:"osds_in"`
	Gateways int           `json:"gateways"`
	Live     int           `json:"gateways_live"`
}

// HealthCheck is one Ceph health check.
type HealthCheck struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
}

// Pool is a Ceph pool with what the gateways export from it.
type Pool struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // "replicated" or "erasure"
	Size     int    `json:"size,omitempty"`
	ECK      int    `json:"ec_k,omitempty"`
	ECM      int    `json:"ec_m,omitempty"`
	RBD      bool   `json:"rbd"`
	Stored   int64  `json:"stored"`
	Used     int64  `json:"used"`
	MaxAvail int64  `json:"max_avail"`
	// Committed is the sum of the configured sizes of the disks in the pool.
	Committed int64 `json:"committed"`
	Disks     int   `json:"disks"`
}

// Image is an RBD image of a pool, exported as a disk or not.
type Image struct {
	Name string `json:"name"`
	Disk bool   `json:"disk"`
}

// DiscoveryAuth is CHAP on discovery sessions; Enabled false means none.
type DiscoveryAuth struct {
	Enabled bool  `json:"enabled"`
	CHAP    *CHAP `json:"chap,omitempty"`
}

// Token is an API bearer token, as listed (never the secret).
type Token struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
}

// TokenCreate asks for a new token; TTL in seconds, 0: no expiry.
type TokenCreate struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
}

// TokenCreated carries the token string, shown this once.
type TokenCreated struct {
	Token string `json:"token"`
	Info  Token  `json:"info"`
}

// AuditEntry records one write made through the API.
type AuditEntry struct {
	Time      time.Time `json:"time"`
	TokenID   string    `json:"token_id"`
	TokenName string    `json:"token_name"`
	Role      string    `json:"role"`
	Remote    string    `json:"remote"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Body      string    `json:"body,omitempty"`
	Revision  int64     `json:"revision"`
	Status    int       `json:"status"`
	Code      string    `json:"code,omitempty"`
}

// Audit is one page of the audit log, newest first.
type Audit struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

// Info describes the API server answering.
type Info struct {
	Version string `json:"version"`
	API     string `json:"api"`
	Gateway string `json:"gateway"`
	// Revision is the newest configuration revision in etcd.
	Revision int64 `json:"revision"`
}

// Export is the whole configuration (backup, restore, moving a standalone
// gateway.yaml into a cluster). Secrets are masked on export; an import
// with masked secrets keeps the stored ones.
type Export struct {
	Version       int             `json:"version" yaml:"version"`
	Settings      *Settings       `json:"settings,omitempty" yaml:"settings,omitempty"`
	DiscoveryAuth *CHAP           `json:"discovery_auth,omitempty" yaml:"discovery_auth,omitempty"`
	Gateways      []ExportGateway `json:"gateways" yaml:"gateways"`
	Disks         []ExportDisk    `json:"disks" yaml:"disks"`
	Targets       []ExportTarget  `json:"targets" yaml:"targets"`
}

// ExportGateway is a gateway in an export.
type ExportGateway struct {
	Name    string   `json:"name" yaml:"name"`
	Portals []string `json:"portals" yaml:"portals"`
	TPGID   uint16   `json:"tpg_id,omitempty" yaml:"tpg_id,omitempty"`
}

// ExportDisk is a disk in an export.
type ExportDisk struct {
	Pool              string `json:"pool" yaml:"pool"`
	Image             string `json:"image" yaml:"image"`
	Size              int64  `json:"size" yaml:"size"`
	BlockSize         uint32 `json:"block_size,omitempty" yaml:"block_size,omitempty"`
	PhysicalBlockSize uint32 `json:"physical_block_size,omitempty" yaml:"physical_block_size,omitempty"`
	Serial            string `json:"serial,omitempty" yaml:"serial,omitempty"`
	WWN               string `json:"wwn,omitempty" yaml:"wwn,omitempty"`
	ReadOnly          bool   `json:"read_only,omitempty" yaml:"read_only,omitempty"`
}

// ExportTarget is a target with its children in an export.
type ExportTarget struct {
	IQN               string            `json:"iqn" yaml:"iqn"`
	Gateways          []string          `json:"gateways" yaml:"gateways"`
	AllowAnyInitiator bool              `json:"allow_any_initiator,omitempty" yaml:"allow_any_initiator,omitempty"`
	CHAP              *CHAP             `json:"chap,omitempty" yaml:"chap,omitempty"`
	LUNs              []ExportLUN       `json:"luns" yaml:"luns"`
	Hosts             []ExportHost      `json:"hosts" yaml:"hosts"`
	HostGroups        []ExportHostGroup `json:"host_groups,omitempty" yaml:"host_groups,omitempty"`
}

// ExportLUN is a LUN in an export.
type ExportLUN struct {
	ID   uint64 `json:"id" yaml:"id"`
	Disk string `json:"disk" yaml:"disk"`
}

// ExportHost is a host in an export.
type ExportHost struct {
	Initiator string   `json:"initiator" yaml:"initiator"`
	CHAP      *CHAP    `json:"chap,omitempty" yaml:"chap,omitempty"`
	LUNs      []uint64 `json:"luns" yaml:"luns"`
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
}

// ExportHostGroup is a host group in an export.
type ExportHostGroup struct {
	Name    string   `json:"name" yaml:"name"`
	Members []string `json:"members" yaml:"members"`
	LUNs    []uint64 `json:"luns" yaml:"luns"`
}

// Bounds of a write's wait=applied (?timeout=): the default, and the
// longest a client may ask for.
const (
	DefaultWaitTimeout = 30 * time.Second
	MaxWaitTimeout     = 5 * time.Minute
)
