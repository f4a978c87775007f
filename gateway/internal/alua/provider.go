package alua

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// Provider is the scsi.ALUAProvider of a cluster gateway. Its answers come
// from the newest cluster snapshot (Update) and are the same on every
// gateway. All methods are safe for concurrent use; the per-command ones
// take no lock.
type Provider struct {
	self    string
	selfTPG uint16
	log     *slog.Logger

	view atomic.Pointer[view]
	// lus are the logical units seen in commands, by disk id, so that
	// state changes can establish their unit attentions.
	lus sync.Map // string -> *scsi.LU
	// transitioning holds the disks this gateway is taking over.
	transitioning sync.Map // string -> struct{}
	// suspended: this gateway admits no commands to any disk (Suspend).
	suspended atomic.Bool
	// resetter propagates logical unit resets (SetResetter).
	resetter atomic.Pointer[func(ctx context.Context, disk string) error]
	// metrics counts owner changes (SetMetrics).
	metrics atomic.Pointer[metrics.Registry]
}

// view is the ALUA layout derived from one snapshot; never modified once
// published.
type view struct {
	disks map[string]diskView
}

type diskView struct {
	owner    string
	ownerTPG uint16
	// groups are the target port groups of the disk's target, one per
	// gateway, ordered by id; their states are filled in per call.
	groups []uint16
}

// NewProvider returns the provider of gateway self, whose target port
// group id is tpg. Until the first Update every logical unit is
// Active/Non-optimized.
func NewProvider(self string, tpg uint16, log *slog.Logger) *Provider {
	if log == nil {
		log = slog.Default()
	}
	p := &Provider{self: self, selfTPG: tpg, log: log.With("component", "alua")}
	p.view.Store(&view{disks: map[string]diskView{}})
	return p
}

var _ scsi.ALUAProvider = (*Provider)(nil)

// AccessState is the state of n's target port group for lu.
func (p *Provider) AccessState(lu *scsi.LU, n *scsi.Nexus) scsi.AccessState {
	p.remember(lu)
	d, ok := p.view.Load().disks[lu.Name()]
	return p.stateOf(lu.Name(), d, ok, n.PortGroupID)
}

// State is the access state this gateway reports for disk through its own
// target port group (for status displays): Active/Optimized where the disk
// is owned here, Transitioning while this gateway takes it over,
// Active/Non-optimized otherwise.
func (p *Provider) State(disk string) scsi.AccessState {
	d, ok := p.view.Load().disks[disk]
	return p.stateOf(disk, d, ok, p.selfTPG)
}

// TargetPortGroups lists every port group of lu's target with its state.
func (p *Provider) TargetPortGroups(lu *scsi.LU, n *scsi.Nexus) []scsi.TargetPortGroup {
	p.remember(lu)
	d, ok := p.view.Load().disks[lu.Name()]
	groups := d.groups
	if !ok || len(groups) == 0 {
		groups = []uint16{n.PortGroupID}
	}
	out := make([]scsi.TargetPortGroup, 0, len(groups))
	for _, id := range groups {
		st := p.stateOf(lu.Name(), d, ok, id)
		out = append(out, scsi.TargetPortGroup{
			ID:        id,
			State:     st,
			Preferred: ok && id == d.ownerTPG,
			// Each gateway has one target port, whose relative port
			// identifier is its port group id.
			Ports: []uint16{id},
		})
	}
	return out
}

func (p *Provider) stateOf(disk string, d diskView, known bool, group uint16) scsi.AccessState {
	if !known {
		return scsi.ActiveNonOptimized
	}
	if group == p.selfTPG {
		if p.suspended.Load() {
			return scsi.Transitioning
		}
		if _, busy := p.transitioning.Load(disk); busy {
			return scsi.Transitioning
		}
	}
	if group == d.ownerTPG && d.owner != "" {
		return scsi.ActiveOptimized
	}
	return scsi.ActiveNonOptimized
}

// remember records lu as the logical unit of its disk.
func (p *Provider) remember(lu *scsi.LU) {
	if cur, ok := p.lus.Load(lu.Name()); !ok || cur.(*scsi.LU) != lu {
		p.lus.Store(lu.Name(), lu)
	}
}

// lu returns the logical unit of disk seen last, or nil.
func (p *Provider) lu(disk string) *scsi.LU {
	v, ok := p.lus.Load(disk)
	if !ok {
		return nil
	}
	return v.(*scsi.LU)
}

// SetMetrics makes the provider count owner changes in r, and r read the
// access states from the provider (State).
func (p *Provider) SetMetrics(r *metrics.Registry) {
	p.metrics.Store(r)
	r.SetALUAState(func(disk string) uint8 { return uint8(p.State(disk)) })
}

// Suspend makes this gateway's port group Transitioning for every disk
// (commands get NOT READY, 04h/0Ah, and initiators retry or use another
// path) while on is set: the gateway does not know whether it may still
// serve (package node decides).
func (p *Provider) Suspend(on bool) {
	switch {
	case p.suspended.Swap(on) == on:
	case on:
		p.log.Warn("port group suspended: commands get NOT READY until this gateway may serve again")
	default:
		p.log.Info("port group serving again")
	}
}

// setTransitioning marks disk as being taken over by this gateway (or not).
func (p *Provider) setTransitioning(disk string, on bool) {
	if on {
		p.transitioning.Store(disk, struct{}{})
	} else {
		p.transitioning.Delete(disk)
	}
}

// Update derives the states from s. Every logical unit whose owner changed
// establishes ASYMMETRIC ACCESS STATE CHANGED on all its I_T nexuses.
func (p *Provider) Update(s *cluster.Snapshot) {
	plan := Plan(s)
	next := &view{disks: map[string]diskView{}}
	for _, iqn := range s.TargetIQNs() {
		var groups []uint16
		tpgOf := map[string]uint16{}
		for _, g := range s.PortGroups(iqn) {
			groups = append(groups, g.TPGID)
			tpgOf[g.Gateway] = g.TPGID
		}
		for _, l := range s.TargetLUNs(iqn) {
			owner := effectiveOwner(s, plan, l.Disk)
			next.disks[l.Disk] = diskView{owner: owner, ownerTPG: tpgOf[owner], groups: groups}
		}
	}
	prev := p.view.Swap(next)
	for disk, d := range next.disks {
		old, ok := prev.disks[disk]
		if !ok || old.owner == d.owner {
			continue
		}
		p.log.Info("ALUA owner changed", "disk", disk, "from", old.owner, "to", d.owner)
		p.metrics.Load().OwnerChanged(disk)
		if lu := p.lu(disk); lu != nil {
			lu.AccessStateChanged()
		}
	}
	for disk := range prev.disks {
		if _, ok := next.disks[disk]; !ok {
			p.lus.Delete(disk)
		}
	}
}
