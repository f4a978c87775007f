package cluster

import (
	"cmp"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// Render builds the configuration one gateway runs from: its portals, the
// targets that list it (with its TPG id as their portal group tag), their
// LUNs, ACLs and CHAP, the disks those LUNs map, discovery CHAP and the
// cluster-wide tuning. Disks are RBD images named by their disk id.
//
// Per-initiator LUN masking (host LUN subsets, host groups) and the port
// groups of the other gateways are not part of config.Config; the daemon
// reads them with Snapshot.VisibleLUNs and Snapshot.PortGroups.
//
// A LUN whose disk is missing (only possible if the keys were edited by
// hand) is left out rather than failing the whole gateway.
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
		for _, l := range s.TargetLUNs(iqn) {
			d, ok := s.Disks[l.Disk]
			if !ok {
				continue
			}
			ct.LUNs = append(ct.LUNs, config.LUN{ID: l.ID, Disk: l.Disk})
			cfg.Disks = append(cfg.Disks, renderDisk(d))
		}
		for _, h := range s.TargetHosts(iqn) {
			ct.ACLs = append(ct.ACLs, config.ACL{InitiatorIQN: h.Initiator, CHAP: cloneCHAP(h.CHAP)})
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
// by id: its host group's LUN list, else its own, else (also for
// initiators without a host entry, admitted by AllowAnyInitiator) every LUN
// of the target. An empty list means the initiator sees nothing; whether it
// may log in at all is decided by the target's ACLs.
func (s *Snapshot) VisibleLUNs(iqn, initiator string) []LUN {
	all := s.TargetLUNs(iqn)
	var subset []uint64
	if g, ok := s.GroupOf(iqn, initiator); ok {
		subset = g.LUNs
	} else if h, ok := s.Hosts[iqn][initiator]; ok {
		subset = h.LUNs
	}
	if len(subset) == 0 {
		return all
	}
	return slices.DeleteFunc(all, func(l LUN) bool { return !slices.Contains(subset, l.ID) })
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
