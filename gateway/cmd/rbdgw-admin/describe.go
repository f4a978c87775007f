package main

import (
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// The types below are what show prints: the configuration with CHAP
// secrets masked, plus ownership and liveness.

type description struct {
	Revision      int64             `json:"revision"`
	DiscoveryAuth *chapView         `json:"discovery_auth,omitempty"`
	Gateways      []gatewayView     `json:"gateways"`
	Disks         []cluster.Disk    `json:"disks"`
	Targets       []targetView      `json:"targets"`
	Damaged       map[string]string `json:"damaged,omitempty"`
}

type gatewayView struct {
	Name    string   `json:"name"`
	TPGID   uint16   `json:"tpg_id"`
	Portals []string `json:"portals"`
	Live    bool     `json:"live"`
}

type chapView struct {
	User       string `json:"user"`
	MutualUser string `json:"mutual_user,omitempty"`
}

type targetView struct {
	IQN               string      `json:"iqn"`
	Gateways          []string    `json:"gateways"`
	AllowAnyInitiator bool        `json:"allow_any_initiator,omitempty"`
	CHAP              *chapView   `json:"chap,omitempty"`
	LUNs              []lunView   `json:"luns"`
	Hosts             []hostView  `json:"hosts"`
	HostGroups        []groupView `json:"host_groups,omitempty"`
}

type lunView struct {
	ID    uint64 `json:"id"`
	Disk  string `json:"disk"`
	Owner string `json:"owner,omitempty"`
	Epoch uint64 `json:"owner_epoch,omitempty"`
}

// hostView and groupView show LUN lists as stored: explicit, [] for none
// (a grouped host's own list is empty; it sees its group's).
type hostView struct {
	Initiator string    `json:"initiator"`
	CHAP      *chapView `json:"chap,omitempty"`
	LUNs      []uint64  `json:"luns"`
	// Addresses the host may log in from; absent: any.
	Addresses []string `json:"addresses,omitempty"`
}

type groupView struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	LUNs    []uint64 `json:"luns"`
}

func mask(c *config.CHAP) *chapView {
	if c == nil {
		return nil
	}
	return &chapView{User: c.User, MutualUser: c.MutualUser}
}

func describe(s *cluster.Snapshot) description {
	d := description{Revision: s.Rev, DiscoveryAuth: mask(s.DiscoveryAuth), Gateways: []gatewayView{}, Disks: []cluster.Disk{}, Targets: []targetView{}}
	for _, name := range s.GatewayNames() {
		g := s.Gateways[name]
		_, live := s.Live[name]
		d.Gateways = append(d.Gateways, gatewayView{Name: name, TPGID: g.TPGID, Portals: g.Portals, Live: live})
	}
	for _, id := range s.DiskIDs() {
		d.Disks = append(d.Disks, s.Disks[id])
	}
	for _, iqn := range s.TargetIQNs() {
		t := s.Targets[iqn]
		tv := targetView{IQN: iqn, Gateways: t.Gateways, AllowAnyInitiator: t.AllowAnyInitiator, CHAP: mask(t.CHAP), LUNs: []lunView{}, Hosts: []hostView{}}
		for _, l := range s.TargetLUNs(iqn) {
			o := s.Owners[l.Disk]
			tv.LUNs = append(tv.LUNs, lunView{ID: l.ID, Disk: l.Disk, Owner: o.Gateway, Epoch: o.Epoch})
		}
		for _, h := range s.TargetHosts(iqn) {
			tv.Hosts = append(tv.Hosts, hostView{Initiator: h.Initiator, CHAP: mask(h.CHAP), LUNs: append([]uint64{}, h.LUNs...),
				Addresses: h.Addresses})
		}
		for _, g := range s.TargetHostGroups(iqn) {
			tv.HostGroups = append(tv.HostGroups, groupView{Name: g.Name, Members: g.Members, LUNs: append([]uint64{}, g.LUNs...)})
		}
		d.Targets = append(d.Targets, tv)
	}
	if len(s.Damaged) > 0 {
		d.Damaged = map[string]string{}
		for k, why := range s.Damaged {
			d.Damaged[string(k)] = why
		}
	}
	return d
}
