package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// Snapshot is the whole cluster state at one etcd revision. It is read-only:
// snapshots are shared between goroutines (Watch hands the same one to its
// reader and keeps it as the base of the next), so change the cluster with
// ops, never by editing a snapshot.
type Snapshot struct {
	// Rev is the etcd revision the snapshot reflects.
	Rev int64
	// SchemaVersion of the stored keys; 0 for an empty cluster.
	SchemaVersion int
	Settings      Settings
	DiscoveryAuth *config.CHAP
	Gateways      map[string]Gateway
	Disks         map[string]Disk // by disk id "<pool>/<image>"
	Targets       map[string]Target
	// Children of targets, by target IQN. A target without children has no
	// entry.
	LUNs       map[string]map[uint64]LUN
	Hosts      map[string]map[string]Host
	HostGroups map[string]map[string]HostGroup
	// Owners by disk id.
	Owners map[string]Owner
	// Live gateways by name.
	Live map[string]Live
	// Damaged lists keys whose value could not be decoded, with the reason.
	// They are left out of the state above, except records whose CHAP
	// secrets cannot be decrypted (secrets.go): those stay, with secrets
	// that refuse every login, so that a gateway without the right key
	// fails closed. Rewriting or deleting the entity repairs them.
	Damaged map[Key]string

	modRevs map[Key]int64
	// secrets decrypts CHAP secrets (nil: none configured); sealed maps
	// the records whose stored secrets are encrypted to the key's id,
	// damaged ones included.
	secrets *SecretKey
	sealed  map[Key]string
}

func newSnapshot() *Snapshot {
	return &Snapshot{
		Gateways:   map[string]Gateway{},
		Disks:      map[string]Disk{},
		Targets:    map[string]Target{},
		LUNs:       map[string]map[uint64]LUN{},
		Hosts:      map[string]map[string]Host{},
		HostGroups: map[string]map[string]HostGroup{},
		Owners:     map[string]Owner{},
		Live:       map[string]Live{},
		Damaged:    map[Key]string{},
		modRevs:    map[Key]int64{},
		sealed:     map[Key]string{},
	}
}

// ModRev is the etcd mod revision of a key in this snapshot, 0 when the key
// is absent. Pass it back with Op.IfModRev for optimistic concurrency
// across a read and a later write (REST ETag / If-Match).
func (s *Snapshot) ModRev(k Key) int64 { return s.modRevs[k] }

// clone copies the maps so the copy can change without touching s. Entity
// values are copied; their slices are shared and never modified in place.
func (s *Snapshot) clone() *Snapshot {
	c := *s
	c.DiscoveryAuth = cloneCHAP(s.DiscoveryAuth)
	c.Gateways = maps.Clone(s.Gateways)
	c.Disks = maps.Clone(s.Disks)
	c.Targets = maps.Clone(s.Targets)
	c.LUNs = cloneNested(s.LUNs)
	c.Hosts = cloneNested(s.Hosts)
	c.HostGroups = cloneNested(s.HostGroups)
	c.Owners = maps.Clone(s.Owners)
	c.Live = maps.Clone(s.Live)
	c.Damaged = maps.Clone(s.Damaged)
	c.modRevs = maps.Clone(s.modRevs)
	c.sealed = maps.Clone(s.sealed)
	return &c
}

func cloneNested[K comparable, V any](m map[string]map[K]V) map[string]map[K]V {
	c := make(map[string]map[K]V, len(m))
	for k, inner := range m {
		c[k] = maps.Clone(inner)
	}
	return c
}

// applyKV decodes one stored key into the snapshot. It reports whether the
// key belongs to the snapshot (pr/ state and unknown keys do not).
func (s *Snapshot) applyKV(k Key, value []byte, modRev int64) bool {
	ref := parseKey(k)
	if ref.kind == kindUnknown || ref.kind == kindPR {
		return false
	}
	s.removeKey(k)
	if err := s.decodeInto(k, ref, value); err != nil {
		s.Damaged[k] = err.Error()
	}
	s.modRevs[k] = modRev
	return true
}

// deleteKV removes a deleted key; it reports whether the key belonged to the
// snapshot.
func (s *Snapshot) deleteKV(k Key) bool {
	ref := parseKey(k)
	if ref.kind == kindUnknown || ref.kind == kindPR {
		return false
	}
	s.removeKey(k)
	delete(s.modRevs, k)
	return true
}

func (s *Snapshot) decodeInto(k Key, ref keyRef, value []byte) error {
	switch ref.kind {
	case kindSchema:
		var v schemaRecord
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		if v.Version < 1 {
			return fmt.Errorf("schema version %d", v.Version)
		}
		s.SchemaVersion = v.Version
	case kindSettings:
		var v Settings
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		s.Settings = v
	case kindDiscoveryAuth:
		var v config.CHAP
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		err := s.openCHAP(k, &v)
		s.DiscoveryAuth = &v
		return err
	case kindGateway:
		var v Gateway
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Name = ref.name
		s.Gateways[v.Name] = v
	case kindDisk:
		var v Disk
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Pool, v.Image, _ = SplitDiskID(ref.name)
		s.Disks[ref.name] = v
	case kindTarget:
		var v Target
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		err := s.openCHAP(k, v.CHAP)
		v.IQN = ref.target
		s.Targets[v.IQN] = v
		return err
	case kindLUN:
		var v LUN
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Target, v.ID = ref.target, ref.lun
		putNested(s.LUNs, ref.target, v.ID, v)
	case kindHost:
		var v Host
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		err := s.openCHAP(k, v.CHAP)
		v.Target, v.Initiator = ref.target, ref.name
		putNested(s.Hosts, ref.target, v.Initiator, v)
		return err
	case kindHostGroup:
		var v HostGroup
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Target, v.Name = ref.target, ref.name
		putNested(s.HostGroups, ref.target, v.Name, v)
	case kindOwner:
		var v Owner
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Disk = ref.name
		s.Owners[v.Disk] = v
	case kindLive:
		var v Live
		if err := json.Unmarshal(value, &v); err != nil {
			return err
		}
		v.Gateway = ref.name
		s.Live[v.Gateway] = v
	}
	return nil
}

// openCHAP decrypts the CHAP secrets of the record at k in place and
// notes whether they were stored encrypted.
func (s *Snapshot) openCHAP(k Key, c *config.CHAP) error {
	id, err := s.secrets.openCHAP(k, c)
	if id != "" {
		s.sealed[k] = id
	}
	return err
}

// SealedBy returns the id of the key that encrypted the CHAP secrets of
// the record at k, "" when they are stored in plain text (or the record
// has none).
func (s *Snapshot) SealedBy(k Key) string { return s.sealed[k] }

// SecretStorage counts the records that hold CHAP secrets by how they are
// stored: Plain in plain text, Sealed by the id of the key that encrypted
// them (damaged records included). Damaged records without a known
// encryption are not counted.
func (s *Snapshot) SecretStorage() (plain int, sealed map[string]int) {
	sealed = map[string]int{}
	for _, id := range s.sealed {
		sealed[id]++
	}
	count := func(k Key, c *config.CHAP) {
		if c != nil {
			if _, enc := s.sealed[k]; !enc {
				plain++
			}
		}
	}
	count(DiscoveryAuthKey, s.DiscoveryAuth)
	for iqn, t := range s.Targets {
		count(TargetKey(iqn), t.CHAP)
	}
	for _, hosts := range s.Hosts {
		for _, h := range hosts {
			count(HostKey(h.Target, h.Initiator), h.CHAP)
		}
	}
	return plain, sealed
}

// removeKey drops whatever entity the key holds.
func (s *Snapshot) removeKey(k Key) {
	delete(s.Damaged, k)
	delete(s.sealed, k)
	ref := parseKey(k)
	switch ref.kind {
	case kindSchema:
		s.SchemaVersion = 0
	case kindSettings:
		s.Settings = Settings{}
	case kindDiscoveryAuth:
		s.DiscoveryAuth = nil
	case kindGateway:
		delete(s.Gateways, ref.name)
	case kindDisk:
		delete(s.Disks, ref.name)
	case kindTarget:
		delete(s.Targets, ref.target)
	case kindLUN:
		deleteNested(s.LUNs, ref.target, ref.lun)
	case kindHost:
		deleteNested(s.Hosts, ref.target, ref.name)
	case kindHostGroup:
		deleteNested(s.HostGroups, ref.target, ref.name)
	case kindOwner:
		delete(s.Owners, ref.name)
	case kindLive:
		delete(s.Live, ref.name)
	}
}

// Record returns the entity the snapshot holds at k (a Host, a Disk, ...,
// as Preview's KeyChange.Value has it), ok=false when there is none.
func (s *Snapshot) Record(k Key) (v any, ok bool) { return s.valueOf(k) }

// valueOf returns the JSON to store for a key, or ok=false when the entity
// is absent from the snapshot (the key is to be deleted).
func (s *Snapshot) valueOf(k Key) (v any, ok bool) {
	ref := parseKey(k)
	switch ref.kind {
	case kindSchema:
		return schemaRecord{Version: s.SchemaVersion}, s.SchemaVersion != 0
	case kindSettings:
		return s.Settings, true
	case kindDiscoveryAuth:
		return s.DiscoveryAuth, s.DiscoveryAuth != nil
	case kindGateway:
		v, ok = s.Gateways[ref.name]
	case kindDisk:
		v, ok = s.Disks[ref.name]
	case kindTarget:
		v, ok = s.Targets[ref.target]
	case kindLUN:
		v, ok = s.LUNs[ref.target][ref.lun]
	case kindHost:
		v, ok = s.Hosts[ref.target][ref.name]
	case kindHostGroup:
		v, ok = s.HostGroups[ref.target][ref.name]
	case kindOwner:
		v, ok = s.Owners[ref.name]
	case kindLive:
		v, ok = s.Live[ref.name]
	}
	return v, ok
}

func putNested[K comparable, V any](m map[string]map[K]V, outer string, k K, v V) {
	inner := m[outer]
	if inner == nil {
		inner = map[K]V{}
		m[outer] = inner
	}
	inner[k] = v
}

func deleteNested[K comparable, V any](m map[string]map[K]V, outer string, k K) {
	inner := m[outer]
	delete(inner, k)
	if len(inner) == 0 {
		delete(m, outer)
	}
}

// Sorted views for callers that list entities.

// TargetIQNs returns the target IQNs in order.
func (s *Snapshot) TargetIQNs() []string { return slices.Sorted(maps.Keys(s.Targets)) }

// GatewayNames returns the gateway names in order.
func (s *Snapshot) GatewayNames() []string { return slices.Sorted(maps.Keys(s.Gateways)) }

// DiskIDs returns the disk ids in order.
func (s *Snapshot) DiskIDs() []string { return slices.Sorted(maps.Keys(s.Disks)) }

// TargetLUNs returns a target's LUNs ordered by id.
func (s *Snapshot) TargetLUNs(iqn string) []LUN {
	m := s.LUNs[iqn]
	out := make([]LUN, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// TargetHosts returns a target's hosts ordered by initiator name.
func (s *Snapshot) TargetHosts(iqn string) []Host {
	m := s.Hosts[iqn]
	out := make([]Host, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

// TargetHostGroups returns a target's host groups ordered by name.
func (s *Snapshot) TargetHostGroups(iqn string) []HostGroup {
	m := s.HostGroups[iqn]
	out := make([]HostGroup, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

// DiskMapping finds the LUN a disk is mapped as, if any.
func (s *Snapshot) DiskMapping(disk string) (LUN, bool) {
	for _, luns := range s.LUNs {
		for _, l := range luns {
			if l.Disk == disk {
				return l, true
			}
		}
	}
	return LUN{}, false
}

// GroupOf returns the host group an initiator belongs to in a target.
func (s *Snapshot) GroupOf(iqn, initiator string) (HostGroup, bool) {
	for _, g := range s.HostGroups[iqn] {
		if slices.Contains(g.Members, initiator) {
			return g, true
		}
	}
	return HostGroup{}, false
}
