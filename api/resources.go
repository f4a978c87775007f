package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

var timeSince = time.Since

// load reads the configuration for a GET.
func (s *Server) load(c *gin.Context) (*cluster.Snapshot, bool) {
	ctx, cancel := s.ctx(c)
	defer cancel()
	snap, _, err := s.opts.Store.Load(ctx)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return snap, true
}

// entity answers a GET of one entity with its ETag.
func (s *Server) entity(c *gin.Context, snap *cluster.Snapshot, k cluster.Key, v any) {
	c.Header("ETag", etag(snap.ModRev(k)))
	s.ok(c, http.StatusOK, v)
}

// gatewayStatus reads what the gateways published, by name. A failure
// leaves it empty: configuration reads never fail for want of status.
func (s *Server) gatewayStatus(c *gin.Context) map[string]GatewayStatus {
	out := map[string]GatewayStatus{}
	if s.opts.Gateways == nil {
		return out
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	st, err := s.opts.Gateways.Status(ctx)
	if err != nil {
		s.log.Warn("cannot read the gateways' status", "err", err)
		return out
	}
	for _, g := range st {
		out[g.Name] = g
	}
	return out
}

func (s *Server) sessions(c *gin.Context) []model.Session {
	var out []model.Session
	for _, g := range s.gatewayStatus(c) {
		out = append(out, g.Sessions...)
	}
	return out
}

// --- gateways

func (s *Server) listGateways(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	st := s.gatewayStatus(c)
	out := []model.Gateway{}
	for _, n := range snap.GatewayNames() {
		out = append(out, gatewayOut(snap, snap.Gateways[n], st))
	}
	s.ok(c, http.StatusOK, out)
}

func (s *Server) getGateway(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	g, found := snap.Gateways[c.Param("name")]
	if !found {
		s.fail(c, notFoundf("gateway %q does not exist", c.Param("name")))
		return
	}
	s.entity(c, snap, cluster.GatewayKey(g.Name), gatewayOut(snap, g, s.gatewayStatus(c)))
}

func (s *Server) putGateway(c *gin.Context) {
	var in model.GatewayPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("name")
	if err := cluster.ValidateGatewayName(name); err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.GatewayKey(name), build: func(*cluster.Snapshot) ([]cluster.Op, error) {
		return []cluster.Op{cluster.PutGateway(cluster.Gateway{Name: name, Portals: in.Portals, TPGID: in.TPGID})}, nil
	}})
}

func (s *Server) deleteGateway(c *gin.Context) {
	name := c.Param("name")
	s.commit(c, change{entity: cluster.GatewayKey(name), build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := snap.Gateways[name]; !ok {
			return nil, notFoundf("gateway %q does not exist", name)
		}
		return []cluster.Op{cluster.DeleteGateway(name)}, nil
	}})
}

// --- targets

func (s *Server) target(c *gin.Context, snap *cluster.Snapshot) (cluster.Target, bool) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return cluster.Target{}, false
	}
	t, ok := snap.Targets[iqn]
	if !ok {
		s.fail(c, notFoundf("target %s does not exist", iqn))
		return cluster.Target{}, false
	}
	return t, true
}

// targetOf is target for builders: the target must exist in snap.
func targetOf(snap *cluster.Snapshot, iqn string) (cluster.Target, error) {
	t, ok := snap.Targets[iqn]
	if !ok {
		return t, notFoundf("target %s does not exist", iqn)
	}
	return t, nil
}

func (s *Server) listTargets(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	out := []model.Target{}
	for _, iqn := range snap.TargetIQNs() {
		out = append(out, targetOut(snap, snap.Targets[iqn]))
	}
	s.ok(c, http.StatusOK, out)
}

func (s *Server) getTarget(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	if t, ok := s.target(c, snap); ok {
		s.entity(c, snap, cluster.TargetKey(t.IQN), targetOut(snap, t))
	}
}

func (s *Server) putTarget(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in model.TargetPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.TargetKey(iqn), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		chap, err := chapIn(in.CHAP, snap.Targets[iqn].CHAP, "target "+iqn+" chap")
		if err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: in.Gateways,
			AllowAnyInitiator: in.AllowAnyInitiator, CHAP: chap})}, nil
	}})
}

func (s *Server) deleteTarget(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	// Too many children for one transaction go in parts, the target last.
	s.commit(c, change{entity: cluster.TargetKey(iqn), inParts: true, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, err := targetOf(snap, iqn); err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.DeleteTarget(iqn)}, nil
	}})
}

func (s *Server) listTargetGateways(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	st := s.gatewayStatus(c)
	out := []model.Gateway{}
	for _, n := range t.Gateways {
		if g, ok := snap.Gateways[n]; ok {
			out = append(out, gatewayOut(snap, g, st))
		}
	}
	s.ok(c, http.StatusOK, out)
}

// putTargetGateway adds a gateway to a target. A gateway that does not
// exist is created with the portals given; one that exists joins as it is,
// and portals that differ from its registered ones are refused (a typo
// must not move a gateway's portal under running sessions).
func (s *Server) putTargetGateway(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("name")
	if err := cluster.ValidateGatewayName(name); err != nil {
		s.fail(c, err)
		return
	}
	// The body is optional (portals create the gateway), but bounded and
	// strict like every other.
	var in model.TargetGatewayPut
	b, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if len(b) > 0 {
		if err := decodeStrict(b, &in); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.commit(c, change{entity: cluster.TargetKey(iqn), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		t, err := targetOf(snap, iqn)
		if err != nil {
			return nil, err
		}
		var ops []cluster.Op
		g, exists := snap.Gateways[name]
		switch {
		case !exists && len(in.Portals) == 0:
			return nil, invalidf("gateway %q does not exist yet: give its portals (ip:port) to create it", name)
		case !exists:
			ops = append(ops, cluster.PutGateway(cluster.Gateway{Name: name, Portals: in.Portals}))
		case len(in.Portals) > 0 && !samePortals(g.Portals, in.Portals):
			return nil, newError(http.StatusConflict, model.CodeExists,
				"gateway %q is registered with portals %v, not %v; change the gateway itself (PUT /gateways/%s) to move it", name, g.Portals, in.Portals, name)
		}
		if contains(t.Gateways, name) {
			return ops, nil
		}
		t.Gateways = append(slices.Clone(t.Gateways), name)
		return append(ops, cluster.PutTarget(t)), nil
	}})
}

// samePortals compares portal lists as sets, in canonical form.
func samePortals(a, b []string) bool {
	ca, cb := canonicalPortals(a), canonicalPortals(b)
	return slices.Equal(ca, cb)
}

func canonicalPortals(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, cluster.CanonicalPortal(p))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Server) deleteTargetGateway(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("name")
	s.commit(c, change{entity: cluster.TargetKey(iqn), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		t, err := targetOf(snap, iqn)
		if err != nil {
			return nil, err
		}
		if !contains(t.Gateways, name) {
			return nil, notFoundf("gateway %q does not serve target %s", name, iqn)
		}
		t.Gateways = slices.DeleteFunc(slices.Clone(t.Gateways), func(g string) bool { return g == name })
		return []cluster.Op{cluster.PutTarget(t)}, nil
	}})
}

// --- LUNs

func (s *Server) listLUNs(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	out := []model.LUN{}
	for _, l := range snap.TargetLUNs(t.IQN) {
		out = append(out, lunOut(snap, l))
	}
	s.ok(c, http.StatusOK, out)
}

func (s *Server) getLUN(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	id, err := lunParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	l, found := snap.LUNs[t.IQN][id]
	if !found {
		s.fail(c, notFoundf("target %s has no LUN %d", t.IQN, id))
		return
	}
	s.entity(c, snap, cluster.LUNKey(t.IQN, id), lunOut(snap, l))
}

func (s *Server) putLUN(c *gin.Context) {
	id, err := lunParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.mapLUN(c, &id)
}

func (s *Server) postLUN(c *gin.Context) { s.mapLUN(c, nil) }

// mapLUN maps a disk at id, at the body's id, or at the lowest free id.
func (s *Server) mapLUN(c *gin.Context, urlID *uint64) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in model.LUNPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if urlID != nil && in.ID != nil && *in.ID != *urlID {
		s.fail(c, invalidf("the body's id %d differs from the URL's LUN id %d", *in.ID, *urlID))
		return
	}
	if urlID == nil && in.ID != nil {
		if *in.ID > cluster.MaxLUNID {
			s.fail(c, invalidf("LUN id %d: expected an integer from 0 to %d", *in.ID, cluster.MaxLUNID))
			return
		}
		urlID = in.ID
	}
	if err := cluster.ValidateDiskID(in.Disk); err != nil {
		s.fail(c, err)
		return
	}
	var entity cluster.Key
	if urlID != nil {
		entity = cluster.LUNKey(iqn, *urlID)
	}
	s.commit(c, change{entity: entity, target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, err := targetOf(snap, iqn); err != nil {
			return nil, err
		}
		if _, ok := snap.Disks[in.Disk]; !ok {
			return nil, notFoundf("disk %s does not exist (create it under /disks first)", in.Disk)
		}
		if cur, ok := snap.DiskMapping(in.Disk); ok {
			if cur.Target == iqn && (urlID == nil || cur.ID == *urlID) {
				return nil, nil // already mapped there: nothing to do
			}
			return nil, newError(http.StatusConflict, model.CodeInUse, "disk %s is already mapped as LUN %d of %s", in.Disk, cur.ID, cur.Target)
		}
		id, err := lunID(snap, iqn, urlID)
		if err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.PutLUN(cluster.LUN{Target: iqn, ID: id, Disk: in.Disk})}, nil
	}, status: mapStatus(urlID == nil)})
}

func mapStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// lunID is want, or the lowest id the target does not use.
func lunID(snap *cluster.Snapshot, iqn string, want *uint64) (uint64, error) {
	if want != nil {
		return *want, nil
	}
	for id := uint64(0); id <= cluster.MaxLUNID; id++ {
		if _, used := snap.LUNs[iqn][id]; !used {
			return id, nil
		}
	}
	return 0, newError(http.StatusConflict, model.CodeInUse, "target %s has no free LUN id (0-%d are all used)", iqn, cluster.MaxLUNID)
}

func (s *Server) deleteLUN(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	id, err := lunParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.LUNKey(iqn, id), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := snap.LUNs[iqn][id]; !ok {
			return nil, notFoundf("target %s has no LUN %d", iqn, id)
		}
		return []cluster.Op{cluster.DeleteLUN(iqn, id)}, nil
	}})
}

// --- hosts

func initiatorParam(c *gin.Context) (string, error) { return iqnParam(c, "initiator") }

func (s *Server) listHosts(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	sessions := s.sessions(c)
	out := []model.Host{}
	for _, h := range snap.TargetHosts(t.IQN) {
		out = append(out, hostOut(snap, h, sessions))
	}
	s.ok(c, http.StatusOK, out)
}

func (s *Server) getHost(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	ini, err := initiatorParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	h, found := snap.Hosts[t.IQN][ini]
	if !found {
		s.fail(c, notFoundf("target %s has no host %s", t.IQN, ini))
		return
	}
	s.entity(c, snap, cluster.HostKey(t.IQN, ini), hostOut(snap, h, s.sessions(c)))
}

func (s *Server) putHost(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	ini, err := initiatorParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in model.HostPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.HostKey(iqn, ini), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, err := targetOf(snap, iqn); err != nil {
			return nil, err
		}
		cur := snap.Hosts[iqn][ini]
		chap, err := chapIn(in.CHAP, cur.CHAP, "host "+ini+" chap")
		if err != nil {
			return nil, err
		}
		h := cluster.Host{Target: iqn, Initiator: ini, CHAP: chap, LUNs: nonNil(in.LUNs)}
		if err := setHostAddresses(&h, in.Addresses); err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.PutHost(h)}, nil
	}})
}

func (s *Server) deleteHost(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	ini, err := initiatorParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.HostKey(iqn, ini), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := snap.Hosts[iqn][ini]; !ok {
			return nil, notFoundf("target %s has no host %s", iqn, ini)
		}
		return []cluster.Op{cluster.DeleteHost(iqn, ini)}, nil
	}})
}

// --- host groups

func (s *Server) listHostGroups(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	out := []model.HostGroup{}
	for _, g := range snap.TargetHostGroups(t.IQN) {
		out = append(out, groupOut(g))
	}
	s.ok(c, http.StatusOK, out)
}

func (s *Server) getHostGroup(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	g, found := snap.HostGroups[t.IQN][c.Param("group")]
	if !found {
		s.fail(c, notFoundf("target %s has no host group %q", t.IQN, c.Param("group")))
		return
	}
	s.entity(c, snap, cluster.HostGroupKey(t.IQN, g.Name), groupOut(g))
}

func (s *Server) putHostGroup(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("group")
	var in model.HostGroupPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	members := make([]string, 0, len(in.Members))
	for _, m := range in.Members {
		members = append(members, cluster.CanonicalISCSIName(m))
	}
	s.commit(c, change{entity: cluster.HostGroupKey(iqn, name), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, err := targetOf(snap, iqn); err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.PutHostGroup(cluster.HostGroup{Target: iqn, Name: name, Members: members, LUNs: nonNil(in.LUNs)})}, nil
	}})
}

func (s *Server) deleteHostGroup(c *gin.Context) {
	iqn, err := iqnParam(c, "iqn")
	if err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("group")
	s.commit(c, change{entity: cluster.HostGroupKey(iqn, name), target: iqn, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := snap.HostGroups[iqn][name]; !ok {
			return nil, notFoundf("target %s has no host group %q", iqn, name)
		}
		return []cluster.Op{cluster.DeleteHostGroup(iqn, name)}, nil
	}})
}

// --- discovery auth and settings

func (s *Server) getDiscoveryAuth(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	s.entity(c, snap, cluster.DiscoveryAuthKey, model.DiscoveryAuth{Enabled: snap.DiscoveryAuth != nil, CHAP: chapOut(snap.DiscoveryAuth)})
}

func (s *Server) putDiscoveryAuth(c *gin.Context) {
	var in model.CHAP
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.DiscoveryAuthKey, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		chap, err := chapIn(&in, snap.DiscoveryAuth, "discovery-auth")
		if err != nil {
			return nil, err
		}
		return []cluster.Op{cluster.PutDiscoveryAuth(*chap)}, nil
	}})
}

func (s *Server) deleteDiscoveryAuth(c *gin.Context) {
	s.commit(c, change{entity: cluster.DiscoveryAuthKey, build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if snap.DiscoveryAuth == nil {
			return nil, nil
		}
		return []cluster.Op{cluster.DeleteDiscoveryAuth()}, nil
	}})
}

func (s *Server) getSettings(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	s.entity(c, snap, cluster.SettingsKey, model.Settings{Tuning: tuningOut(snap.Settings.Tuning)})
}

func (s *Server) putSettings(c *gin.Context) {
	var in model.Settings
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{entity: cluster.SettingsKey, build: func(*cluster.Snapshot) ([]cluster.Op, error) {
		return []cluster.Op{cluster.PutSettings(cluster.Settings{Tuning: tuningIn(in.Tuning)})}, nil
	}})
}

// setHostAddresses stores the addresses a host may log in from (IP
// addresses or CIDRs; none: any). The cluster's validation checks them
// and stores them canonical, so the response shows what gateways enforce.
func setHostAddresses(h *cluster.Host, addrs []string) error {
	h.Addresses = slices.Clone(addrs)
	return nil
}

var _ = config.CHAP{}
