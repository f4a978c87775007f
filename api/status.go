package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// healthz answers 200 while etcd answers, 503 otherwise; no token needed.
func (s *Server) healthz(c *gin.Context) {
	s.info(c)
}

func (s *Server) info(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	s.ok(c, http.StatusOK, model.Info{Version: s.opts.Version, API: "v1", Gateway: s.opts.Gateway, Revision: snap.Rev})
}

func (s *Server) getCluster(c *gin.Context) {
	ceph, ok := s.ceph(c)
	if !ok {
		return
	}
	snap, ok := s.load(c)
	if !ok {
		return
	}
	h, err := ceph.Health()
	if err != nil {
		s.fail(c, err)
		return
	}
	h.Checks = nonNil(h.Checks)
	h.Gateways = len(snap.Gateways)
	h.Live = len(snap.Live)
	s.ok(c, http.StatusOK, h)
}

func (s *Server) listPools(c *gin.Context) {
	ceph, ok := s.ceph(c)
	if !ok {
		return
	}
	snap, ok := s.load(c)
	if !ok {
		return
	}
	pools, err := ceph.Pools()
	if err != nil {
		s.fail(c, err)
		return
	}
	for i := range pools {
		for _, d := range snap.Disks {
			if d.Pool == pools[i].Name {
				pools[i].Committed += d.Size
				pools[i].Disks++
			}
		}
	}
	s.ok(c, http.StatusOK, nonNil(pools))
}

func (s *Server) listImages(c *gin.Context) {
	ceph, ok := s.ceph(c)
	if !ok {
		return
	}
	snap, ok := s.load(c)
	if !ok {
		return
	}
	pool := c.Param("pool")
	names, err := ceph.ListImages(pool)
	if err != nil {
		s.fail(c, err)
		return
	}
	slices.Sort(names)
	out := make([]model.Image, 0, len(names))
	for _, n := range names {
		_, isDisk := snap.Disks[cluster.DiskID(pool, n)]
		out = append(out, model.Image{Name: n, Disk: isDisk})
	}
	s.ok(c, http.StatusOK, out)
}

// listSessions gathers the sessions every live gateway published; the
// gateways that are down are listed, never an error.
func (s *Server) listSessions(c *gin.Context) {
	ctx, cancel := s.ctx(c)
	defer cancel()
	st, err := s.opts.Gateways.Status(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	gw, target, ini := c.Query("gateway"), cluster.CanonicalISCSIName(c.Query("target")), cluster.CanonicalISCSIName(c.Query("initiator"))
	out := model.Sessions{Sessions: []model.Session{}, Down: []string{}}
	for _, g := range st {
		if gw != "" && g.Name != gw {
			continue
		}
		if !g.Live {
			out.Down = append(out.Down, g.Name)
			continue
		}
		for _, ss := range g.Sessions {
			if (target == "" || ss.Target == target) && (ini == "" || ss.Initiator == ini) {
				out.Sessions = append(out.Sessions, ss)
			}
		}
	}
	slices.SortFunc(out.Sessions, func(a, b model.Session) int {
		return strings.Compare(a.Gateway+a.Target+a.Initiator+a.ISID, b.Gateway+b.Target+b.Initiator+b.ISID)
	})
	slices.Sort(out.Down)
	s.ok(c, http.StatusOK, out)
}

// getConnection returns what an attach (os-brick, scripts) needs to log a
// host in to one of its LUNs through every live gateway of the target.
func (s *Server) getConnection(c *gin.Context) {
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
	h, isHost := snap.Hosts[t.IQN][ini]
	if !isHost && !t.AllowAnyInitiator {
		s.fail(c, notFoundf("target %s has no host %s", t.IQN, ini))
		return
	}
	visible := snap.VisibleLUNs(t.IQN, ini)
	if !isHost {
		visible = snap.TargetLUNs(t.IQN)
	}
	if len(visible) == 0 {
		s.fail(c, notFoundf("host %s sees no LUN of %s; map one first", ini, t.IQN))
		return
	}
	lun := visible[0].ID
	if v, ok := c.GetQuery("lun"); ok {
		id, err := parseLUNID(v)
		if err != nil {
			s.fail(c, err)
			return
		}
		if !slices.ContainsFunc(visible, func(l cluster.LUN) bool { return l.ID == id }) {
			s.fail(c, notFoundf("host %s does not see LUN %d of %s", ini, id, t.IQN))
			return
		}
		lun = id
	}
	d := model.ConnectionData{TargetDiscovered: false, TargetIQN: t.IQN, TargetLUN: lun,
		TargetPortals: []string{}, TargetIQNs: []string{}, TargetLUNs: []uint64{}}
	for _, pg := range snap.PortGroups(t.IQN) {
		if _, live := snap.Live[pg.Gateway]; !live {
			continue
		}
		for _, p := range pg.Portals {
			d.TargetPortals = append(d.TargetPortals, p)
			d.TargetIQNs = append(d.TargetIQNs, t.IQN)
			d.TargetLUNs = append(d.TargetLUNs, lun)
		}
	}
	if len(d.TargetPortals) == 0 {
		s.fail(c, newError(http.StatusServiceUnavailable, model.CodeUnavailable, "no gateway serving %s is live", t.IQN))
		return
	}
	d.TargetPortal = d.TargetPortals[0]
	chap := h.CHAP
	if chap == nil {
		chap = t.CHAP
	}
	if chap != nil {
		// The caller is an operator attaching this host: it needs the
		// secret to log in, as os-brick does.
		d.AuthMethod, d.AuthUsername, d.AuthPassword = "CHAP", chap.User, chap.Secret
		d.TargetUsername, d.TargetPassword = chap.MutualUser, chap.MutualSecret
	}
	s.ok(c, http.StatusOK, model.Connection{DriverVolumeType: "iscsi", Data: d})
}

var _ = strconv.Itoa
