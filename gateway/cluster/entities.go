package cluster

import (
	"slices"
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// The entity types below are the JSON values stored under their keys. The
// identity fields (IQN, Name, Pool/Image, Target, ID, Initiator) are also
// encoded for readability, but the key is authoritative: decoding fills them
// from the key.

// Gateway is one gateway node. Each gateway is one target port group of
// every target it serves.
type Gateway struct {
	Name string `json:"name"`
	// Portals are the "ip:port" addresses the gateway listens on. Every
	// gateway reports all portals of a target in SendTargets.
	Portals []string `json:"portals"`
	// TPGID is the gateway's target port group id, also used as its portal
	// group tag and relative target port id. Unique in the cluster, 1-65535;
	// 0 in a put means "keep the current id, or allocate the lowest free one".
	TPGID uint16 `json:"tpg_id"`
}

// Disk is an RBD image exported as a LUN.
type Disk struct {
	Pool  string `json:"pool"`
	Image string `json:"image"`
	// Size in bytes; a multiple of BlockSize. Disks only grow.
	Size int64 `json:"size"`
	// BlockSize is 512 (the default when 0 is put) or 4096; fixed at creation.
	BlockSize uint32 `json:"block_size"`
	// PhysicalBlockSize is the physical block size reported to initiators
	// (READ CAPACITY(16)), a power of two multiple of BlockSize; 0 means
	// the default, 4096 (or BlockSize when larger). Fixed at creation; a
	// put with 0 keeps the stored value.
	PhysicalBlockSize uint32 `json:"physical_block_size,omitempty"`
	// Serial (VPD page 0x80) and WWN (16 hex digits, the NAA-6 vendor
	// specific identifier extension) are generated when the disk is created
	// and never change, so every gateway presents the same identity. A put
	// with them empty keeps the stored values.
	Serial string `json:"serial"`
	WWN    string `json:"wwn"`
	// ReadOnly LUNs refuse writes.
	ReadOnly bool `json:"read_only,omitempty"`
}

// ID is the disk id "<pool>/<image>".
func (d Disk) ID() string { return DiskID(d.Pool, d.Image) }

// physicalBlockSize is the physical block size initiators see.
func (d Disk) physicalBlockSize() uint32 {
	if d.PhysicalBlockSize != 0 {
		return d.PhysicalBlockSize
	}
	return max(d.BlockSize, defaultPhysicalBlockSize)
}

// Target is one iSCSI target, presented with the same IQN by each gateway
// it lists.
type Target struct {
	IQN string `json:"iqn"`
	// Gateways serving the target; each must exist.
	Gateways []string `json:"gateways"`
	// AllowAnyInitiator admits initiators without a host entry.
	AllowAnyInitiator bool `json:"allow_any_initiator,omitempty"`
	// CHAP applies to initiators without their own host credentials.
	CHAP *config.CHAP `json:"chap,omitempty"`
}

// LUN maps a LUN number of a target to a disk. A disk is mapped at most once
// in the whole cluster.
type LUN struct {
	Target string `json:"target"`
	ID     uint64 `json:"id"`
	Disk   string `json:"disk"`
}

// Host is an initiator admitted to a target (an ACL entry).
type Host struct {
	Target    string       `json:"target"`
	Initiator string       `json:"initiator"`
	CHAP      *config.CHAP `json:"chap,omitempty"`
	// LUNs are the LUN ids of the target this host sees, exactly: empty
	// means none, and a LUN mapped later is seen only once listed. A host
	// in a host group takes the group's list and must have an empty one.
	// (Schema 1 read an empty list as every LUN; migrate.go.)
	LUNs []uint64 `json:"luns"`
	// Addresses are the source addresses the initiator may log in from:
	// IP addresses or CIDRs, canonical (config.CanonicalAddresses), at
	// most config.MaxAddresses; empty means any. Every gateway must run a
	// build that knows the field before it is set: an older one ignores it.
	Addresses []string `json:"addresses,omitempty"`
}

// HostGroup gives several hosts of a target the same LUN set.
type HostGroup struct {
	Target string `json:"target"`
	Name   string `json:"name"`
	// Members are initiator names with a host entry in the same target; a
	// host belongs to at most one group.
	Members []string `json:"members"`
	// LUNs the members see, exactly as for a host: empty means none.
	LUNs []uint64 `json:"luns"`
}

// Settings are cluster-wide tunables rendered into every gateway's config.
type Settings struct {
	Tuning config.Tuning `json:"tuning"`
}

// Owner is the ALUA owner of a disk: the gateway reporting it
// Active/Optimized. Epoch grows by one on every change of owner and serves
// as a fencing token.
type Owner struct {
	Disk    string `json:"disk"`
	Gateway string `json:"gateway"`
	Epoch   uint64 `json:"epoch"`
}

// Live announces that a gateway's daemon is running; the key is bound to
// the daemon's lease and disappears when the lease ends.
type Live struct {
	Gateway string    `json:"gateway"`
	Lease   int64     `json:"lease"`
	Since   time.Time `json:"since"`
}

type schemaRecord struct {
	Version int `json:"version"`
}

func cloneCHAP(c *config.CHAP) *config.CHAP {
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// Clones detach an entity from slices its caller may keep modifying.

func (g Gateway) clone() Gateway { g.Portals = slices.Clone(g.Portals); return g }
func (t Target) clone() Target {
	t.Gateways = slices.Clone(t.Gateways)
	t.CHAP = cloneCHAP(t.CHAP)
	return t
}
func (h Host) clone() Host {
	h.LUNs = cloneIDs(h.LUNs)
	h.CHAP = cloneCHAP(h.CHAP)
	h.Addresses = slices.Clone(h.Addresses)
	return h
}
func (g HostGroup) clone() HostGroup {
	g.Members = slices.Clone(g.Members)
	g.LUNs = cloneIDs(g.LUNs)
	return g
}

// cloneIDs copies a LUN list, never nil, so that a stored record says
// "luns": [] rather than null.
func cloneIDs(ids []uint64) []uint64 { return append([]uint64{}, ids...) }
