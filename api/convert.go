package api

import (
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// chapOut shows credentials with their secrets masked.
func chapOut(c *config.CHAP) *model.CHAP {
	if c == nil {
		return nil
	}
	out := &model.CHAP{User: c.User, Secret: model.Masked, MutualUser: c.MutualUser}
	if c.MutualSecret != "" {
		out.MutualSecret = model.Masked
	}
	return out
}

// chapIn reads credentials from a request. A masked secret keeps the
// stored one (cur), so that a document read with GET can be written back.
func chapIn(in *model.CHAP, cur *config.CHAP, field string) (*config.CHAP, error) {
	if in == nil {
		return nil, nil
	}
	out := &config.CHAP{User: in.User, Secret: in.Secret, MutualUser: in.MutualUser, MutualSecret: in.MutualSecret}
	if out.Secret == model.Masked {
		if cur == nil || cur.Secret == "" {
			return nil, invalidf("%s: secret is %q but no secret is stored to keep; send the secret", field, model.Masked)
		}
		out.Secret = cur.Secret
	}
	if out.MutualSecret == model.Masked {
		if cur == nil || cur.MutualSecret == "" {
			return nil, invalidf("%s: mutual_secret is %q but no mutual secret is stored to keep; send the secret", field, model.Masked)
		}
		out.MutualSecret = cur.MutualSecret
	}
	if err := cluster.ValidateCHAP(out, field); err != nil {
		return nil, err
	}
	return out, nil
}

// iqnParam is the target IQN of the URL, canonical (lower case), checked.
func iqnParam(c *gin.Context, name string) (string, error) {
	v := cluster.CanonicalISCSIName(c.Param(name))
	if err := cluster.ValidateISCSIName(v); err != nil {
		return "", err
	}
	return v, nil
}

// diskParam is the disk id "<pool>/<image>" of the URL, checked.
func diskParam(c *gin.Context) (string, error) {
	id := cluster.DiskID(c.Param("pool"), c.Param("image"))
	if err := cluster.ValidateDiskID(id); err != nil {
		return "", err
	}
	return id, nil
}

// lunParam is the LUN id of the URL.
func lunParam(c *gin.Context) (uint64, error) {
	return parseLUNID(c.Param("id"))
}

func parseLUNID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || id > cluster.MaxLUNID {
		return 0, invalidf("LUN id %q: expected an integer from 0 to %d", s, cluster.MaxLUNID)
	}
	return id, nil
}

func gatewayOut(snap *cluster.Snapshot, g cluster.Gateway, st map[string]GatewayStatus) model.Gateway {
	out := model.Gateway{Name: g.Name, Portals: nonNil(g.Portals), TPGID: g.TPGID, Targets: []string{}}
	for _, iqn := range snap.TargetIQNs() {
		if contains(snap.Targets[iqn].Gateways, g.Name) {
			out.Targets = append(out.Targets, iqn)
		}
	}
	if s, ok := st[g.Name]; ok && s.Live {
		out.Live = true
		out.Version = s.Version
		if !s.Started.IsZero() {
			started := s.Started
			out.Started = &started
			out.UptimeSeconds = int64(timeSince(started).Seconds())
		}
		out.AppliedRevision = s.AppliedRevision
		out.AppliedComplete = s.AppliedComplete
		out.APIURL = s.APIURL
		out.Sessions = len(s.Sessions)
	}
	return out
}

func targetOut(snap *cluster.Snapshot, t cluster.Target) model.Target {
	out := model.Target{IQN: t.IQN, Gateways: nonNil(t.Gateways), AllowAnyInitiator: t.AllowAnyInitiator,
		CHAP: chapOut(t.CHAP), LUNs: []model.LUN{}, Hosts: []string{}, HostGroups: []string{}}
	for _, l := range snap.TargetLUNs(t.IQN) {
		out.LUNs = append(out.LUNs, lunOut(snap, l))
	}
	for _, h := range snap.TargetHosts(t.IQN) {
		out.Hosts = append(out.Hosts, h.Initiator)
	}
	for _, g := range snap.TargetHostGroups(t.IQN) {
		out.HostGroups = append(out.HostGroups, g.Name)
	}
	return out
}

func lunOut(snap *cluster.Snapshot, l cluster.LUN) model.LUN {
	return model.LUN{ID: l.ID, Disk: l.Disk, Owner: snap.Owners[l.Disk].Gateway, Size: snap.Disks[l.Disk].Size}
}

func hostOut(snap *cluster.Snapshot, h cluster.Host, sessions []model.Session) model.Host {
	out := model.Host{Initiator: h.Initiator, CHAP: chapOut(h.CHAP), LUNs: []uint64{}, Addresses: nonNil(h.Addresses), LoggedIn: []string{}}
	for _, l := range snap.VisibleLUNs(h.Target, h.Initiator) {
		out.LUNs = append(out.LUNs, l.ID)
	}
	if g, ok := snap.GroupOf(h.Target, h.Initiator); ok {
		out.Group = g.Name
	}
	for _, s := range sessions {
		if s.Target == h.Target && s.Initiator == h.Initiator && !contains(out.LoggedIn, s.Gateway) {
			out.LoggedIn = append(out.LoggedIn, s.Gateway)
		}
	}
	return out
}

func groupOut(g cluster.HostGroup) model.HostGroup {
	return model.HostGroup{Name: g.Name, Members: nonNil(g.Members), LUNs: nonNil(g.LUNs)}
}

func tuningOut(t config.Tuning) model.Tuning { return model.Tuning(t) }
func tuningIn(t model.Tuning) config.Tuning  { return config.Tuning(t) }
