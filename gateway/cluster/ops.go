package cluster

import (
	"github.com/rbdgw/rbdgw/gateway/config"
)

// Op is one typed change of the cluster configuration. Ops are validated
// and committed together by Store.Commit, Store.Apply or Store.Update: either
// all of them take effect or none.
type Op struct {
	key    Key
	put    bool
	value  any // the entity for puts (a value, never a pointer)
	expect expectation
	rev    int64
	// read: the op writes nothing; the commit only requires key to keep
	// the mod revision it has in the base snapshot (requireUnchanged).
	read bool
}

type expectation int

const (
	expectNothing expectation = iota
	expectAbsent
	expectModRev
)

// Key is the key the op writes.
func (o Op) Key() Key { return o.key }

// IfAbsent makes the op create-only: it fails with ErrExists if the entity
// already exists.
func (o Op) IfAbsent() Op { o.expect, o.rev = expectAbsent, 0; return o }

// IfModRev makes the op conditional on the entity still being at mod
// revision rev (from Snapshot.ModRev): a *ConflictError otherwise, or
// ErrNotFound if it has been deleted.
func (o Op) IfModRev(rev int64) Op { o.expect, o.rev = expectModRev, rev; return o }

func putOp(k Key, v any) Op { return Op{key: k, put: true, value: v} }
func deleteOp(k Key) Op     { return Op{key: k} }

// requireUnchanged writes nothing: the commit fails with a conflict when k
// changed since the base snapshot was read.
func requireUnchanged(k Key) Op { return Op{key: k, read: true} }

// PutGateway creates or replaces a gateway.
func PutGateway(g Gateway) Op { return putOp(GatewayKey(g.Name), g.clone()) }

// DeleteGateway removes a gateway; refused while a target lists it.
func DeleteGateway(name string) Op { return deleteOp(GatewayKey(name)) }

// PutDisk creates a disk (generating its serial and WWN unless given) or
// updates one (grow, read-only flag).
func PutDisk(d Disk) Op { return putOp(DiskKey(d.ID()), d) }

// DeleteDisk removes a disk with its owner and reservation state; refused
// while a LUN maps it.
func DeleteDisk(id string) Op { return deleteOp(DiskKey(id)) }

// PutTarget creates or replaces a target record (not its children).
func PutTarget(t Target) Op { return putOp(TargetKey(t.IQN), t.clone()) }

// DeleteTarget removes a target with all its LUN maps, hosts and host groups.
func DeleteTarget(iqn string) Op { return deleteOp(TargetKey(iqn)) }

// PutLUN maps a disk as a LUN of a target.
func PutLUN(l LUN) Op { return putOp(LUNKey(l.Target, l.ID), l) }

// DeleteLUN unmaps a LUN; refused while a host or host group lists it.
func DeleteLUN(iqn string, id uint64) Op { return deleteOp(LUNKey(iqn, id)) }

// PutHost admits an initiator to a target.
func PutHost(h Host) Op { return putOp(HostKey(h.Target, h.Initiator), h.clone()) }

// DeleteHost removes an initiator from a target; refused while a host group
// lists it.
func DeleteHost(iqn, initiator string) Op { return deleteOp(HostKey(iqn, initiator)) }

// PutHostGroup creates or replaces a host group.
func PutHostGroup(g HostGroup) Op { return putOp(HostGroupKey(g.Target, g.Name), g.clone()) }

// DeleteHostGroup removes a host group (its members stay as hosts).
func DeleteHostGroup(iqn, name string) Op { return deleteOp(HostGroupKey(iqn, name)) }

// PutDiscoveryAuth requires CHAP on discovery sessions.
func PutDiscoveryAuth(c config.CHAP) Op { return putOp(DiscoveryAuthKey, c) }

// DeleteDiscoveryAuth lets discovery sessions in without CHAP.
func DeleteDiscoveryAuth() Op { return deleteOp(DiscoveryAuthKey) }

// PutSettings replaces the cluster-wide settings.
func PutSettings(s Settings) Op { return putOp(SettingsKey, s) }
