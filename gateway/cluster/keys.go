package cluster

import (
	"strconv"
	"strings"
)

// DefaultPrefix is the etcd key prefix every key of the cluster lives under.
const DefaultPrefix = "/rbdgw/"

// SchemaVersion is the key schema this package reads and writes. A cluster
// whose schema key holds a higher version is refused (ErrSchema); one with
// a lower version is migrated by the first write (migrate.go).
const SchemaVersion = 2

// Key is a key relative to the store prefix, e.g. "targets/iqn.2003-01.org.example:t1".
// Snapshot.ModRev and Op.IfModRev take keys built by the functions below.
type Key string

// Singleton keys.
const (
	SchemaKey        Key = "schema"
	SettingsKey      Key = "settings"
	DiscoveryAuthKey Key = "discovery-auth"
)

// Key prefixes (relative). Children of a target live under its own key plus
// "/" so that one prefix range covers a target's LUNs, hosts and groups.
const (
	targetsPrefix  = "targets/"
	gatewaysPrefix = "gateways/"
	disksPrefix    = "disks/"
	ownersPrefix   = "owners/"
	prPrefix       = "pr/"
	livePrefix     = "live/"

	lunsSegment       = "luns"
	hostsSegment      = "hosts"
	hostGroupsSegment = "host-groups"
)

// TargetKey is the key of a target record.
func TargetKey(iqn string) Key { return Key(targetsPrefix + iqn) }

// LUNKey is the key of LUN id of a target.
func LUNKey(iqn string, id uint64) Key {
	return Key(targetsPrefix + iqn + "/" + lunsSegment + "/" + strconv.FormatUint(id, 10))
}

// HostKey is the key of an initiator's ACL entry in a target.
func HostKey(iqn, initiator string) Key {
	return Key(targetsPrefix + iqn + "/" + hostsSegment + "/" + initiator)
}

// HostGroupKey is the key of a host group of a target.
func HostGroupKey(iqn, name string) Key {
	return Key(targetsPrefix + iqn + "/" + hostGroupsSegment + "/" + name)
}

// GatewayKey is the key of a gateway record.
func GatewayKey(name string) Key { return Key(gatewaysPrefix + name) }

// DiskKey is the key of a disk; disk is "<pool>/<image>".
func DiskKey(disk string) Key { return Key(disksPrefix + disk) }

// OwnerKey is the key holding a disk's ALUA owner and epoch.
func OwnerKey(disk string) Key { return Key(ownersPrefix + disk) }

// PRKey is the key holding a disk's persistent reservation state.
func PRKey(disk string) Key { return Key(prPrefix + disk) }

// LiveKey is the lease-bound key announcing that a gateway is alive.
func LiveKey(gateway string) Key { return Key(livePrefix + gateway) }

func targetChildrenPrefix(iqn string) Key { return Key(targetsPrefix + iqn + "/") }
func targetHostsPrefix(iqn string) Key    { return Key(targetsPrefix + iqn + "/" + hostsSegment + "/") }
func targetGroupsPrefix(iqn string) Key {
	return Key(targetsPrefix + iqn + "/" + hostGroupsSegment + "/")
}

// DiskID joins a pool and an image into the disk id used in keys and LUN maps.
func DiskID(pool, image string) string { return pool + "/" + image }

// SplitDiskID splits "<pool>/<image>"; ok is false unless both parts are
// present and neither contains a slash.
func SplitDiskID(id string) (pool, image string, ok bool) {
	pool, image, found := strings.Cut(id, "/")
	if !found || pool == "" || image == "" || strings.Contains(image, "/") {
		return "", "", false
	}
	return pool, image, true
}

type keyKind int

const (
	kindUnknown keyKind = iota
	kindSchema
	kindSettings
	kindDiscoveryAuth
	kindGateway
	kindDisk
	kindTarget
	kindLUN
	kindHost
	kindHostGroup
	kindOwner
	kindPR
	kindLive
)

// keyRef is a parsed key: its kind and the identifiers it carries.
type keyRef struct {
	kind   keyKind
	target string // target IQN (targets and their children)
	name   string // gateway, disk id, initiator, group name
	lun    uint64
}

// parseKey classifies a relative key. Keys it does not recognise (written by
// a newer schema minor change or by hand) report kindUnknown and are ignored.
func parseKey(k Key) keyRef {
	s := string(k)
	switch k {
	case SchemaKey:
		return keyRef{kind: kindSchema}
	case SettingsKey:
		return keyRef{kind: kindSettings}
	case DiscoveryAuthKey:
		return keyRef{kind: kindDiscoveryAuth}
	}
	if rest, ok := strings.CutPrefix(s, gatewaysPrefix); ok {
		return singleName(kindGateway, rest)
	}
	if rest, ok := strings.CutPrefix(s, livePrefix); ok {
		return singleName(kindLive, rest)
	}
	for _, p := range []struct {
		prefix string
		kind   keyKind
	}{{disksPrefix, kindDisk}, {ownersPrefix, kindOwner}, {prPrefix, kindPR}} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			if _, _, ok := SplitDiskID(rest); !ok {
				return keyRef{}
			}
			return keyRef{kind: p.kind, name: rest}
		}
	}
	if rest, ok := strings.CutPrefix(s, targetsPrefix); ok {
		return parseTargetKey(rest)
	}
	return keyRef{}
}

func singleName(kind keyKind, rest string) keyRef {
	if rest == "" || strings.Contains(rest, "/") {
		return keyRef{}
	}
	return keyRef{kind: kind, name: rest}
}

func parseTargetKey(rest string) keyRef {
	parts := strings.Split(rest, "/")
	if parts[0] == "" {
		return keyRef{}
	}
	switch {
	case len(parts) == 1:
		return keyRef{kind: kindTarget, target: parts[0]}
	case len(parts) != 3 || parts[2] == "":
		return keyRef{}
	}
	iqn, seg, leaf := parts[0], parts[1], parts[2]
	switch seg {
	case lunsSegment:
		id, err := strconv.ParseUint(leaf, 10, 64)
		// Only the canonical decimal spelling maps back to the same key.
		if err != nil || strconv.FormatUint(id, 10) != leaf {
			return keyRef{}
		}
		return keyRef{kind: kindLUN, target: iqn, lun: id}
	case hostsSegment:
		return keyRef{kind: kindHost, target: iqn, name: leaf}
	case hostGroupsSegment:
		return keyRef{kind: kindHostGroup, target: iqn, name: leaf}
	}
	return keyRef{}
}

// key rebuilds the relative key of a parsed reference.
func (r keyRef) key() Key {
	switch r.kind {
	case kindSchema:
		return SchemaKey
	case kindSettings:
		return SettingsKey
	case kindDiscoveryAuth:
		return DiscoveryAuthKey
	case kindGateway:
		return GatewayKey(r.name)
	case kindLive:
		return LiveKey(r.name)
	case kindDisk:
		return DiskKey(r.name)
	case kindOwner:
		return OwnerKey(r.name)
	case kindPR:
		return PRKey(r.name)
	case kindTarget:
		return TargetKey(r.target)
	case kindLUN:
		return LUNKey(r.target, r.lun)
	case kindHost:
		return HostKey(r.target, r.name)
	case kindHostGroup:
		return HostGroupKey(r.target, r.name)
	}
	return ""
}
