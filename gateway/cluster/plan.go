package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// plan turns ops into one etcd transaction. The ops are applied to a draft
// copy of the base snapshot; every check then reads the draft through read
// (one key) or guard (a key range), and those recordings become the
// transaction's compares:
//
//   - every key read or written must still have the mod revision it had in
//     the base snapshot (0: still absent), which catches changes and
//     deletions;
//   - every guarded range must have no key modified after the base
//     revision, which catches keys added concurrently (a new LUN mapping the
//     disk being deleted, a second gateway taking the same TPG id).
//
// Two writers that each validated against their own snapshot therefore
// never commit a state that neither would have accepted.
type plan struct {
	base  *Snapshot
	draft *Snapshot
	// reads, writes and guards are relative keys (guards are prefixes).
	reads  map[Key]bool
	writes map[Key]bool
	guards map[Key]bool
	// sideDeletes are removed without a compare: state that dies with its
	// disk (ownership, reservations) and has no meaning without it.
	sideDeletes map[Key]bool
	// secrets encrypts the CHAP secrets written (nil: plain text, refused
	// while the cluster holds encrypted ones unless plainOK).
	secrets *SecretKey
	plainOK bool
}

func buildPlan(base *Snapshot, ops []Op) (*plan, error) {
	if base.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("%w: cluster schema %d, this build writes %d", ErrSchema, base.SchemaVersion, SchemaVersion)
	}
	if _, bad := base.Damaged[SchemaKey]; bad {
		return nil, fmt.Errorf("%w: the schema key cannot be decoded", ErrSchema)
	}
	p := &plan{
		base:        base,
		draft:       base.clone(),
		reads:       map[Key]bool{},
		writes:      map[Key]bool{},
		guards:      map[Key]bool{},
		sideDeletes: map[Key]bool{},
	}
	// Every commit depends on the schema it was validated under.
	p.read(SchemaKey)
	if base.SchemaVersion == 0 {
		p.draft.SchemaVersion = SchemaVersion
		p.writes[SchemaKey] = true
	} else if base.outdated() {
		// Records of an older schema are migrated by this commit, before
		// the ops (which follow the current schema) apply (migrate.go).
		p.upgrade()
	}
	for _, op := range ops {
		if err := p.apply(op); err != nil {
			return nil, err
		}
	}
	if base.outdated() {
		if err := p.checkUpgrade(); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.writes)) {
		if err := p.check(k); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *plan) read(k Key)  { p.reads[k] = true }
func (p *plan) guard(k Key) { p.guards[k] = true }

// present reports whether the draft holds the key, decodable or not.
func (p *plan) present(k Key) bool {
	if _, ok := p.draft.valueOf(k); ok {
		return true
	}
	_, damaged := p.draft.Damaged[k]
	return damaged
}

func (p *plan) apply(op Op) error {
	if op.read {
		p.read(op.key)
		return nil
	}
	if err := p.checkExpectation(op); err != nil {
		return err
	}
	if op.put {
		return p.applyPut(op)
	}
	ref := parseKey(op.key)
	switch ref.kind {
	case kindUnknown, kindSchema, kindSettings, kindOwner, kindPR, kindLive:
		return invalidf("cannot delete %q through a configuration change", op.key)
	}
	if !p.present(op.key) {
		return notFoundf("%s", op.key)
	}
	p.remove(op.key)
	switch ref.kind {
	case kindTarget:
		p.cascadeTarget(ref.target)
	case kindDisk:
		delete(p.draft.Owners, ref.name)
		p.sideDeletes[OwnerKey(ref.name)] = true
		p.sideDeletes[PRKey(ref.name)] = true
	case kindGateway:
		p.dropClientRecord(ref.name)
	}
	return nil
}

// dropClientRecord deletes the Ceph client record of a deleted gateway
// when nobody can need it to fence the gateway (ClientRecordKept), and
// makes the commit depend on what that rests on: the gateway has not
// registered and no disk has been claimed since the snapshot (targets are
// guarded by the delete's own check).
func (p *plan) dropClientRecord(name string) {
	if ClientRecordKept(p.draft, name) != "" {
		return
	}
	p.read(LiveKey(name))
	p.guard(Key(ownersPrefix))
	p.sideDeletes[ClientKey(name)] = true
}

func (p *plan) remove(k Key) {
	p.draft.removeKey(k)
	p.writes[k] = true
}

// cascadeTarget deletes every child of a deleted target, including
// undecodable ones, and guards the range against children added meanwhile.
func (p *plan) cascadeTarget(iqn string) {
	p.guard(targetChildrenPrefix(iqn))
	for id := range p.draft.LUNs[iqn] {
		p.remove(LUNKey(iqn, id))
	}
	for name := range p.draft.Hosts[iqn] {
		p.remove(HostKey(iqn, name))
	}
	for name := range p.draft.HostGroups[iqn] {
		p.remove(HostGroupKey(iqn, name))
	}
	for k := range p.draft.Damaged {
		if strings.HasPrefix(string(k), string(targetChildrenPrefix(iqn))) {
			p.remove(k)
		}
	}
}

func (p *plan) checkExpectation(op Op) error {
	cur := p.base.modRevs[op.key]
	switch {
	case op.expect == expectNothing:
		return nil
	case op.expect == expectAbsent || op.rev == 0:
		if cur != 0 {
			return fmt.Errorf("%w: %s", ErrExists, op.key)
		}
	case cur == 0:
		return notFoundf("%s", op.key)
	case cur != op.rev:
		return &ConflictError{Key: op.key, Rev: p.base.Rev}
	}
	return nil
}

func (p *plan) applyPut(op Op) error {
	d := p.draft
	switch v := op.value.(type) {
	case Gateway:
		return p.putGateway(v.clone())
	case Disk:
		return p.putDisk(v)
	case Target:
		v = v.clone() // validation sorts in place; ops may be shared
		if err := validateTarget(&v); err != nil {
			return err
		}
		d.Targets[v.IQN] = v
	case LUN:
		if err := validateLUN(&v); err != nil {
			return err
		}
		putNested(d.LUNs, v.Target, v.ID, v)
	case Host:
		v = v.clone()
		if err := validateHost(&v); err != nil {
			return err
		}
		putNested(d.Hosts, v.Target, v.Initiator, v)
	case HostGroup:
		v = v.clone()
		if err := validateHostGroup(&v); err != nil {
			return err
		}
		putNested(d.HostGroups, v.Target, v.Name, v)
	case config.CHAP:
		if err := ValidateCHAP(&v, "discovery-auth"); err != nil {
			return err
		}
		d.DiscoveryAuth = &v
	case Settings:
		if err := validateSettings(&v); err != nil {
			return err
		}
		d.Settings = v
	default:
		return invalidf("unsupported op for %q", op.key)
	}
	delete(d.Damaged, op.key)
	p.writes[op.key] = true
	return nil
}

func (p *plan) putGateway(g Gateway) error {
	if err := validateGateway(&g); err != nil {
		return err
	}
	old, exists := p.draft.Gateways[g.Name]
	switch {
	case g.TPGID == 0 && exists:
		g.TPGID = old.TPGID
	case g.TPGID == 0:
		id, err := p.freeTPGID()
		if err != nil {
			return err
		}
		g.TPGID = id
	case exists && old.TPGID != g.TPGID:
		// Initiators cache port group ids; renumbering a live gateway would
		// make its paths look like a different port.
		return invalidf("gateway %s: tpg_id is fixed at %d", g.Name, old.TPGID)
	}
	p.draft.Gateways[g.Name] = g
	delete(p.draft.Damaged, GatewayKey(g.Name))
	p.writes[GatewayKey(g.Name)] = true
	return nil
}

func (p *plan) freeTPGID() (uint16, error) {
	p.guard(gatewaysPrefix)
	used := map[uint16]bool{}
	for _, g := range p.draft.Gateways {
		used[g.TPGID] = true
	}
	for id := 1; id <= 0xffff; id++ {
		if !used[uint16(id)] {
			return uint16(id), nil
		}
	}
	return 0, invalidf("no free target port group id")
}

func (p *plan) putDisk(d Disk) error {
	old, exists := p.draft.Disks[d.ID()]
	if exists && d.BlockSize == 0 {
		d.BlockSize = old.BlockSize
	}
	if exists && d.PhysicalBlockSize == 0 {
		d.PhysicalBlockSize = old.PhysicalBlockSize
	}
	if err := validateDisk(&d); err != nil {
		return err
	}
	if exists {
		if d.Serial == "" {
			d.Serial = old.Serial
		}
		if d.WWN == "" {
			d.WWN = old.WWN
		}
		switch {
		case d.BlockSize != old.BlockSize:
			return invalidf("disk %s: block size is fixed at %d", d.ID(), old.BlockSize)
		case d.physicalBlockSize() != old.physicalBlockSize():
			return invalidf("disk %s: physical block size is fixed at %d", d.ID(), old.physicalBlockSize())
		case d.Serial != old.Serial || d.WWN != old.WWN:
			return invalidf("disk %s: serial and wwn never change", d.ID())
		case d.Size < old.Size:
			return invalidf("disk %s: size can only grow (now %d)", d.ID(), old.Size)
		}
	} else {
		serial, wwn := newDiskIdentity()
		if d.Serial == "" {
			d.Serial = serial
		}
		if d.WWN == "" {
			d.WWN = wwn
		}
	}
	p.draft.Disks[d.ID()] = d
	delete(p.draft.Damaged, DiskKey(d.ID()))
	p.writes[DiskKey(d.ID())] = true
	return nil
}

// check validates the references of one written key against the final
// draft, recording what it looked at.
func (p *plan) check(k Key) error {
	ref := parseKey(k)
	if _, ok := p.draft.valueOf(k); !ok {
		return p.checkDeleted(ref)
	}
	d := p.draft
	switch ref.kind {
	case kindGateway:
		return p.checkGateway(d.Gateways[ref.name])
	case kindDisk:
		return p.checkNewDisk(d.Disks[ref.name])
	case kindTarget:
		for _, gw := range d.Targets[ref.target].Gateways {
			p.read(GatewayKey(gw))
			if _, ok := d.Gateways[gw]; !ok {
				return invalidf("target %s: gateway %s does not exist", ref.target, gw)
			}
		}
	case kindLUN:
		return p.checkLUN(d.LUNs[ref.target][ref.lun])
	case kindHost:
		return p.checkHost(d.Hosts[ref.target][ref.name])
	case kindHostGroup:
		return p.checkHostGroup(d.HostGroups[ref.target][ref.name])
	}
	return nil
}

func (p *plan) checkGateway(g Gateway) error {
	p.guard(gatewaysPrefix)
	for _, other := range p.draft.Gateways {
		if other.Name == g.Name {
			continue
		}
		if other.TPGID == g.TPGID {
			return invalidf("gateway %s: tpg_id %d is used by gateway %s", g.Name, g.TPGID, other.Name)
		}
		for _, portal := range g.Portals {
			if slices.Contains(other.Portals, portal) {
				return invalidf("gateway %s: portal %s is used by gateway %s", g.Name, portal, other.Name)
			}
		}
	}
	return nil
}

// checkNewDisk keeps device identities unique: two disks with one WWN would
// be merged into one device by multipath.
func (p *plan) checkNewDisk(d Disk) error {
	if p.base.modRevs[DiskKey(d.ID())] != 0 {
		return nil // identity was checked when the disk was created and never changes
	}
	p.guard(disksPrefix)
	for _, other := range p.draft.Disks {
		if other.ID() == d.ID() {
			continue
		}
		if other.WWN == d.WWN || other.Serial == d.Serial {
			return invalidf("disk %s: serial or wwn already used by disk %s", d.ID(), other.ID())
		}
	}
	return nil
}

func (p *plan) requireTarget(iqn string) error {
	p.read(TargetKey(iqn))
	if _, ok := p.draft.Targets[iqn]; !ok {
		return notFoundf("target %s", iqn)
	}
	return nil
}

func (p *plan) checkLUN(l LUN) error {
	if err := p.requireTarget(l.Target); err != nil {
		return err
	}
	p.read(DiskKey(l.Disk))
	if _, ok := p.draft.Disks[l.Disk]; !ok {
		return invalidf("target %s LUN %d: disk %s does not exist", l.Target, l.ID, l.Disk)
	}
	// A disk is one logical unit: mapping it twice would split its
	// reservations and ALUA ownership between two LUN identities.
	p.guard(targetsPrefix)
	for iqn, luns := range p.draft.LUNs {
		for _, other := range luns {
			if other.Disk == l.Disk && (iqn != l.Target || other.ID != l.ID) {
				return inUsef("disk %s is already mapped as LUN %d of %s", l.Disk, other.ID, iqn)
			}
		}
	}
	return nil
}

func (p *plan) requireLUNs(iqn string, ids []uint64, owner string) error {
	for _, id := range ids {
		p.read(LUNKey(iqn, id))
		if _, ok := p.draft.LUNs[iqn][id]; !ok {
			return invalidf("%s: target %s has no LUN %d", owner, iqn, id)
		}
	}
	return nil
}

func (p *plan) checkHost(h Host) error {
	if err := p.requireTarget(h.Target); err != nil {
		return err
	}
	owner := "host " + h.Initiator
	if err := p.requireLUNs(h.Target, h.LUNs, owner); err != nil {
		return err
	}
	if len(h.LUNs) > 0 {
		p.guard(targetGroupsPrefix(h.Target))
		if g, ok := p.draft.GroupOf(h.Target, h.Initiator); ok {
			return invalidf("%s: member of host group %s, which sets its LUNs", owner, g.Name)
		}
	}
	return nil
}

func (p *plan) checkHostGroup(g HostGroup) error {
	if err := p.requireTarget(g.Target); err != nil {
		return err
	}
	owner := "host group " + g.Name
	if err := p.requireLUNs(g.Target, g.LUNs, owner); err != nil {
		return err
	}
	p.guard(targetGroupsPrefix(g.Target))
	for _, m := range g.Members {
		p.read(HostKey(g.Target, m))
		h, ok := p.draft.Hosts[g.Target][m]
		if !ok {
			return invalidf("%s: target %s has no host %s", owner, g.Target, m)
		}
		if len(h.LUNs) > 0 {
			return invalidf("%s: host %s has its own LUN list; clear it first", owner, m)
		}
		for _, other := range p.draft.HostGroups[g.Target] {
			if other.Name != g.Name && slices.Contains(other.Members, m) {
				return inUsef("%s: host %s is already in host group %s", owner, m, other.Name)
			}
		}
	}
	return nil
}

// checkDeleted refuses deletions that would leave a reference dangling.
func (p *plan) checkDeleted(ref keyRef) error {
	d := p.draft
	switch ref.kind {
	case kindGateway:
		p.guard(targetsPrefix)
		for _, t := range d.Targets {
			if slices.Contains(t.Gateways, ref.name) {
				return inUsef("gateway %s serves target %s", ref.name, t.IQN)
			}
		}
	case kindDisk:
		p.guard(targetsPrefix)
		if l, ok := d.DiskMapping(ref.name); ok {
			return inUsef("disk %s is mapped as LUN %d of %s", ref.name, l.ID, l.Target)
		}
	case kindLUN:
		p.guard(targetHostsPrefix(ref.target))
		p.guard(targetGroupsPrefix(ref.target))
		for _, h := range d.Hosts[ref.target] {
			if slices.Contains(h.LUNs, ref.lun) {
				return inUsef("LUN %d of %s is listed by host %s", ref.lun, ref.target, h.Initiator)
			}
		}
		for _, g := range d.HostGroups[ref.target] {
			if slices.Contains(g.LUNs, ref.lun) {
				return inUsef("LUN %d of %s is listed by host group %s", ref.lun, ref.target, g.Name)
			}
		}
	case kindHost:
		p.guard(targetGroupsPrefix(ref.target))
		if g, ok := d.GroupOf(ref.target, ref.name); ok {
			return inUsef("host %s is a member of host group %s", ref.name, g.Name)
		}
	}
	return nil
}

// txn renders the plan as etcd compares and operations under prefix.
func (p *plan) txn(prefix string, maxOps int) ([]clientv3.Cmp, []clientv3.Op, error) {
	var cmps []clientv3.Cmp
	for _, k := range slices.Sorted(maps.Keys(unionKeys(p.reads, p.writes))) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+string(k)), "=", p.base.modRevs[k]))
	}
	for _, g := range slices.Sorted(maps.Keys(p.guards)) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+string(g)), "<", p.base.Rev+1).WithPrefix())
	}
	if nc, no := p.size(); nc > maxOps || no > maxOps {
		return nil, nil, fmt.Errorf("%w: %d compares and %d writes, etcd accepts %d of each per transaction; split the change",
			ErrTooLarge, nc, no, maxOps)
	}
	var ops []clientv3.Op
	for _, k := range slices.Sorted(maps.Keys(p.writes)) {
		v, ok := p.draft.valueOf(k)
		if !ok {
			ops = append(ops, clientv3.OpDelete(prefix+string(k)))
			continue
		}
		v, err := p.storedValue(k, v)
		if err != nil {
			return nil, nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: encode %s: %w", k, err)
		}
		ops = append(ops, clientv3.OpPut(prefix+string(k), string(b)))
	}
	for _, k := range slices.Sorted(maps.Keys(p.sideDeletes)) {
		if !p.writes[k] {
			ops = append(ops, clientv3.OpDelete(prefix+string(k)))
		}
	}
	return cmps, ops, nil
}

// size is the number of compares and of operations txn renders.
func (p *plan) size() (cmps, ops int) {
	cmps = len(unionKeys(p.reads, p.writes)) + len(p.guards)
	ops = len(p.writes)
	for k := range p.sideDeletes {
		if !p.writes[k] {
			ops++
		}
	}
	return cmps, ops
}

// storedValue is what is stored for the record at k: v with its CHAP
// secrets encrypted when the plan has a key. Without one, a CHAP secret is
// not written in plain text into a cluster whose secrets are encrypted
// (a writer that lacks the key file would silently undo the encryption).
func (p *plan) storedValue(k Key, v any) (any, error) {
	// A record kept although its secrets did not decrypt holds
	// placeholders (secrets.go); only an op that replaces it (which clears
	// Damaged) may write it.
	if reason, bad := p.draft.Damaged[k]; bad {
		return nil, fmt.Errorf("%w: %s is not rewritten: %s", ErrSecretKey, k, reason)
	}
	if p.secrets != nil {
		sv, err := p.secrets.sealedValue(k, v)
		if err != nil {
			return nil, fmt.Errorf("cluster: encode %s: %w", k, err)
		}
		return sv, nil
	}
	if p.plainOK || len(p.base.sealed) == 0 || !holdsCHAP(v) {
		return v, nil
	}
	var id string
	for _, id = range p.base.sealed {
		break
	}
	return nil, fmt.Errorf("%w: %s: the cluster's CHAP secrets are encrypted (key %s) and this writer has no secret key file (-secret-key-file); it would store the secret in plain text",
		ErrSecretKey, k, id)
}

// holdsCHAP reports whether a stored record carries CHAP secrets.
func holdsCHAP(v any) bool {
	switch e := v.(type) {
	case Target:
		return e.CHAP != nil
	case Host:
		return e.CHAP != nil
	case *config.CHAP:
		return e != nil
	case config.CHAP:
		return true
	}
	return false
}

func unionKeys(a, b map[Key]bool) map[Key]bool {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}
