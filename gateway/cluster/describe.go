package cluster

// Kinds of keys, as DescribeKey names them (the event stream of the REST
// API reports configuration changes by these names).
const (
	KindSchema        = "schema"
	KindSettings      = "settings"
	KindDiscoveryAuth = "discovery_auth"
	KindGateway       = "gateway"
	KindDisk          = "disk"
	KindTarget        = "target"
	KindLUN           = "lun"
	KindHost          = "host"
	KindHostGroup     = "host_group"
	KindOwner         = "owner"
	KindPR            = "pr"
	KindLive          = "live"
)

var kindNames = map[keyKind]string{
	kindSchema:        KindSchema,
	kindSettings:      KindSettings,
	kindDiscoveryAuth: KindDiscoveryAuth,
	kindGateway:       KindGateway,
	kindDisk:          KindDisk,
	kindTarget:        KindTarget,
	kindLUN:           KindLUN,
	kindHost:          KindHost,
	kindHostGroup:     KindHostGroup,
	kindOwner:         KindOwner,
	kindPR:            KindPR,
	kindLive:          KindLive,
}

// KeyInfo is what a key of the schema names.
type KeyInfo struct {
	// Kind is one of the Kind constants.
	Kind string
	// Target is the IQN of a target and of its LUNs, hosts and groups.
	Target string
	// Name is the gateway (gateway, live), the disk id (disk, owner, pr),
	// the initiator (host) or the group name (host_group).
	Name string
	// LUN is the id of a LUN.
	LUN uint64
	// Config is true for the keys of the configuration proper (what
	// config ops write), false for ownership, reservations and liveness.
	Config bool
}

// DescribeKey classifies a key relative to the prefix; ok is false for
// keys the schema does not define (tokens, audit, status records, ...).
func DescribeKey(k Key) (KeyInfo, bool) {
	ref := parseKey(k)
	name, ok := kindNames[ref.kind]
	if !ok {
		return KeyInfo{}, false
	}
	config := ref.kind != kindOwner && ref.kind != kindPR && ref.kind != kindLive
	return KeyInfo{Kind: name, Target: ref.target, Name: ref.name, LUN: ref.lun, Config: config}, true
}
