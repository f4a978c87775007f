package cluster

import (
	"cmp"
	"maps"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// Render builds the configuration one gateway runs from: its portals, the
// targets that list it (with its TPG id as their portal group tag), their
// LUNs, ACLs with CHAP, LUN view and source addresses, the disks those LUNs map, discovery
// CHAP and the cluster-wide tuning. Disks are RBD images named by their
// disk id.
//
// Every host is rendered with an explicit view (config.ACL.SetView): its
// group's LUN list, else its own, an empty one mapping nothing. Initiators
// without a host entry, admitted by AllowAnyInitiator, have no ACL and see
// every LUN. The port groups of the other gateways are not part of
// config.Config; the daemon reads them with Snapshot.PortGroups.
//
// A LUN whose disk is missing (only possible if the keys were edited by
// hand) is left out rather than failing the whole gateway, and so are the
// view entries naming it.
func Render(s *Snapshot, gateway string) (*config.Config, error) {
	gw, ok := s.Gateways[gateway]
	if !ok {
		return nil, notFoundf("gateway %s", gateway)
	}
	cfg := &config.Config{
		Portals:       slices.Clone(gw.Portals),
		DiscoveryAuth: cloneCHAP(s.DiscoveryAuth),
		Disks:         []config.Disk{},
		Targets:       []config.Target{},
		Tuning:        s.Settings.Tuning,
	}
	for _, iqn := range s.TargetIQNs() {
		t := s.Targets[iqn]
		if !slices.Contains(t.Gateways, gateway) {
			continue
		}
		ct := config.Target{
			IQN:               iqn,
			LUNs:              []config.LUN{},
			ACLs:              []config.ACL{},
			AllowAnyInitiator: t.AllowAnyInitiator,
			CHAP:              cloneCHAP(t.CHAP),
			TPGT:              gw.TPGID,
		}
		rendered := map[uint64]bool{}
		for _, l := range s.TargetLUNs(iqn) {
			d, ok := s.Disks[l.Disk]
			if !ok {
				continue
			}
			ct.LUNs = append(ct.LUNs, config.LUN{ID: l.ID, Disk: l.Disk})
			cfg.Disks = append(cfg.Disks, renderDisk(d))
			rendered[l.ID] = true
		}
		for _, h := range s.TargetHosts(iqn) {
			acl := config.ACL{InitiatorIQN: h.Initiator, CHAP: cloneCHAP(h.CHAP), Addresses: slices.Clone(h.Addresses)}
			ids, _ := s.hostView(iqn, h.Initiator)
			acl.SetView(slices.DeleteFunc(ids, func(id uint64) bool { return !rendered[id] }))
			ct.ACLs = append(ct.ACLs, acl)
		}
		cfg.Targets = append(cfg.Targets, ct)
	}
	slices.SortFunc(cfg.Disks, func(a, b config.Disk) int { return cmp.Compare(a.Name, b.Name) })
	return cfg, nil
}

func renderDisk(d Disk) config.Disk {
	return config.Disk{
		Name:              d.ID(),
		Backend:           "rbd",
		Size:              d.Size,
		Pool:              d.Pool,
		Image:             d.Image,
		BlockSize:         d.BlockSize,
		PhysicalBlockSize: d.PhysicalBlockSize,
		Serial:            d.Serial,
		WWN:               d.WWN,
		ReadOnly:          d.ReadOnly,
	}
}

// VisibleLUNs returns the LUNs of target iqn an initiator may see, ordered
// by id: those its host group lists, else those its host entry lists
// (none when the list is empty), else, for an initiator without a host
// entry (admitted by AllowAnyInitiator), every LUN of the target. Whether
// it may log in at all is decided by the target's ACLs.
func (s *Snapshot) VisibleLUNs(iqn, initiator string) []LUN {
	all := s.TargetLUNs(iqn)
	ids, masked := s.hostView(iqn, initiator)
	if !masked {
		return all
	}
	return slices.DeleteFunc(all, func(l LUN) bool { return !slices.Contains(ids, l.ID) })
}

// hostView returns a copy of the LUN ids an initiator's host group, else
// its host entry, lists, and masked=false when it has neither (it sees
// every LUN). Records of a not yet migrated schema 1 cluster are read as
// they were meant: an empty list is every LUN of the target.
func (s *Snapshot) hostView(iqn, initiator string) (ids []uint64, masked bool) {
	if g, ok := s.GroupOf(iqn, initiator); ok {
		ids = g.LUNs
	} else if h, ok := s.Hosts[iqn][initiator]; ok {
		ids = h.LUNs
	} else {
		return nil, false
	}
	if s.SchemaVersion == 1 && len(ids) == 0 {
		return slices.Sorted(maps.Keys(s.LUNs[iqn])), true
	}
	return slices.Clone(ids), true
}

// PortGroup is one gateway's target port group of a target, as REPORT
// TARGET PORT GROUPS and SendTargets describe it.
type PortGroup struct {
	Gateway string
	TPGID   uint16
	Portals []string
}

// PortGroups lists the port groups of a target, one per gateway serving
// it, ordered by TPG id.
func (s *Snapshot) PortGroups(iqn string) []PortGroup {
	t, ok := s.Targets[iqn]
	if !ok {
		return nil
	}
	var out []PortGroup
	for _, name := range t.Gateways {
		if gw, ok := s.Gateways[name]; ok {
			out = append(out, PortGroup{Gateway: name, TPGID: gw.TPGID, Portals: slices.Clone(gw.Portals)})
		}
	}
	slices.SortFunc(out, func(a, b PortGroup) int { return cmp.Compare(a.TPGID, b.TPGID) })
	return out
}
