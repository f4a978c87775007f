package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

func indentJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func (e *Env) width() int {
	if e.Width > 20 {
		return e.Width
	}
	return 80
}

// ls prints the tree below p, depth levels deep (0: all).
func (e *Env) ls(ctx context.Context, p Path, depth int) error {
	n := needFor(p, depth)
	st, err := Load(ctx, e.Client, n)
	if err != nil {
		return err
	}
	if err := present(st, p); err != nil {
		return err
	}
	if e.structured() {
		return e.emit(st.documents(n))
	}
	writeTree(e.Out, build(st, p, depth), e.width())
	return nil
}

// documents are the parts of st a listing loaded, keyed by what they are.
func (s *State) documents(n need) map[string]any {
	out := map[string]any{}
	if n.cluster {
		if s.ClusterErr != nil {
			out["cluster_error"] = s.ClusterErr.Error()
		} else {
			out["cluster"] = s.Cluster
		}
	}
	if n.pools {
		if s.PoolsErr != nil {
			out["pools_error"] = s.PoolsErr.Error()
		} else {
			out["pools"] = nonNil(s.Pools)
		}
	}
	if n.disks {
		out["disks"] = nonNil(s.Disks)
	}
	if n.gateways {
		out["gateways"] = nonNil(s.Gateways)
	}
	if n.discovery {
		out["discovery_auth"] = s.DiscoveryAuth
	}
	if n.targets || n.target != "" {
		out["targets"] = nonNil(s.Targets)
		if n.hosts {
			out["hosts"] = s.Hosts
		}
		if n.groups {
			out["host_groups"] = s.HostGroups
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// present checks that the node p names is in st (for names the listing
// read from list endpoints).
func present(st *State, p Path) error {
	ok := true
	switch p.Kind {
	case KPool:
		ok = false
		for _, pl := range st.Pools {
			ok = ok || pl.Name == p.Pool
		}
		if st.PoolsErr != nil {
			return st.PoolsErr
		}
	case KDiskPool:
		ok = false
		for _, d := range st.Disks {
			ok = ok || d.Pool == p.Pool
		}
	case KDisk:
		_, ok = st.disk(p.Disk())
	case KTDisk, KHostLUN, KGroupDisk:
		t, _ := st.target(p.Target)
		ok = false
		for _, l := range t.LUNs {
			ok = ok || (p.Kind == KHostLUN && l.ID == p.LUN) || (p.Kind != KHostLUN && l.Disk == p.Disk())
		}
		if ok && p.Kind == KHostLUN {
			h, found := st.host(p.Target, p.Name)
			ok = found && contains(h.LUNs, p.LUN)
		}
		if ok && p.Kind == KGroupDisk {
			ok = false
			if g, found := st.group(p.Target, p.Name); found {
				for _, l := range t.LUNs {
					ok = ok || (l.Disk == p.Disk() && contains(g.LUNs, l.ID))
				}
			}
		}
	case KTGateway:
		t, _ := st.target(p.Target)
		ok = contains(t.Gateways, p.Name)
	case KHost:
		_, ok = st.host(p.Target, p.Name)
	case KGroup:
		_, ok = st.group(p.Target, p.Name)
	case KGroupHost:
		g, found := st.group(p.Target, p.Name)
		ok = found && contains(g.Members, p.Member)
	}
	if !ok {
		return notFound("%s does not exist", p)
	}
	return nil
}

// cd goes to p once the API confirms it exists.
func (e *Env) cd(ctx context.Context, p Path) error {
	if err := e.exists(ctx, p); err != nil {
		return err
	}
	e.prev, e.Cwd = e.Cwd, p
	return nil
}

// exists asks the API whether the entities p names exist, with the fewest
// reads.
func (e *Env) exists(ctx context.Context, p Path) error {
	switch p.Kind {
	case KRoot, KCluster, KPools, KDisks, KTargets:
		return nil
	case KPool:
		pools, err := e.Client.Pools(ctx)
		if err != nil {
			return err
		}
		return present(&State{Pools: pools}, p)
	case KDiskPool, KDisk:
		disks, err := e.Client.Disks(ctx)
		if err != nil {
			return err
		}
		return present(&State{Disks: disks}, p)
	case KHost, KHostLUN:
		h, _, err := e.Client.Host(ctx, p.Target, p.Name)
		if err != nil {
			return err
		}
		if p.Kind == KHostLUN && !contains(h.LUNs, p.LUN) {
			return notFound("%s does not exist", p)
		}
		return nil
	case KGroup, KGroupHost:
		g, _, err := e.Client.HostGroup(ctx, p.Target, p.Name)
		if err != nil {
			return err
		}
		if p.Kind == KGroupHost && !contains(g.Members, p.Member) {
			return notFound("%s does not exist", p)
		}
		return nil
	}
	// Target and what its document lists.
	t, _, err := e.Client.Target(ctx, p.Target)
	if err != nil {
		return err
	}
	st := &State{Targets: []model.Target{t}, HostGroups: map[string][]model.HostGroup{}}
	if p.Kind == KGroupDisk {
		g, _, err := e.Client.HostGroup(ctx, p.Target, p.Name)
		if err != nil {
			return err
		}
		st.HostGroups[p.Target] = []model.HostGroup{g}
	}
	return present(st, p)
}

// help lists the commands at a node, or explains one.
func (e *Env) help(at Path, name string) error {
	if name != "" {
		c := lookup(at.Kind, name)
		if c == nil {
			return usagef("help: no command %q at %s; commands here: %s", name, at, strings.Join(commandNames(at.Kind), ", "))
		}
		fmt.Fprintf(e.Out, "%s\n", c.Usage)
		writeColumns(e.Out, [][2]string{{"", c.Summary}}, 2, e.width())
		if len(c.Params) > 0 {
			fmt.Fprintln(e.Out, "Parameters:")
			var rows [][2]string
			for _, p := range c.Params {
				form := p.Name + "=<value>"
				if !p.Keyword || typedBare(p) {
					form = "<" + p.Name + ">" // typed bare, as the usage shows it
				}
				if p.Kind == VEnum {
					// An action is typed bare; a keyword needs its name.
					form = strings.Join(p.Enum, "|")
					if p.Keyword {
						form = p.Name + "=" + form
					}
				}
				req := ""
				if p.Required {
					req = " (required)"
				}
				rows = append(rows, [2]string{"  " + form, p.Desc + req})
			}
			writeColumns(e.Out, rows, fitColumn(rows, 31, e.width()), e.width())
		}
		return nil
	}
	fmt.Fprintf(e.Out, "Commands at %s (%s):\n", at, at.Kind)
	var rows [][2]string
	for _, c := range Commands(at.Kind) {
		rows = append(rows, [2]string{"  " + c.Usage, c.Summary})
	}
	writeColumns(e.Out, rows, fitColumn(rows, 45, e.width()), e.width())
	writeColumns(e.Out, [][2]string{{"", "Paths: absolute (/disks), relative (hosts), .. and /. A path before a command runs it there: /disks ls"}}, 0, e.width())
	return nil
}

// writeColumns writes rows of a name and its description, descriptions
// from column col and wrapped at width so that a line never wraps on the
// terminal in the middle of a word; a name too wide for the column (top's
// usage) has a line of its own, its description starting under the
// others.
func writeColumns(w io.Writer, rows [][2]string, col, width int) {
	for _, r := range rows {
		name := r[0]
		if name != "" && utf8.RuneCountInString(name) >= col {
			fmt.Fprintln(w, name)
			name = ""
		}
		// The last column stays free: some terminals wrap a full line.
		for i, l := range wrapWords(r[1], width-col-1) {
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(w, "%-*s%s\n", col, name, l)
		}
	}
}

// fitColumn is where the descriptions of rows start: after the widest
// name, at most at max, and in a narrow window at most at two fifths of
// it (wider names get a line of their own), so that descriptions keep
// room.
func fitColumn(rows [][2]string, max, width int) int {
	limit := min(max, width*2/5)
	col := 0
	for _, r := range rows {
		if n := utf8.RuneCountInString(r[0]) + 1; n <= limit && n > col {
			col = n
		}
	}
	if col == 0 {
		return limit
	}
	return col
}

// wrapWords breaks s into lines of at most room runes at spaces (a word
// longer than room has a line of its own); with less than 20 runes of
// room it is one line.
func wrapWords(s string, room int) []string {
	if room < 20 || utf8.RuneCountInString(s) <= room {
		return []string{s}
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > room {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// sessions lists the live sessions of the node's target or host.
func (e *Env) sessions(ctx context.Context, at Path, gateway string) error {
	if gateway != "" {
		// The API filters on the name and lists nothing for a name it
		// does not know: a typo would read as "no sessions".
		if _, err := e.Client.Gateway(ctx, gateway); err != nil {
			return err
		}
	}
	f := client.SessionFilter{Gateway: gateway, Target: at.Target}
	switch at.Kind {
	case KHost, KHostLUN:
		f.Initiator = at.Name
	case KGroupHost:
		f.Initiator = at.Member
	}
	ss, err := e.Client.Sessions(ctx, f)
	if err != nil {
		return err
	}
	if e.structured() {
		return e.emit(ss)
	}
	if len(ss.Sessions) == 0 {
		fmt.Fprintln(e.Out, "no sessions")
	} else {
		var rows [][]string
		for _, s := range ss.Sessions {
			rows = append(rows, []string{s.Gateway, s.Initiator, s.Target, s.Portal, s.RemoteAddress,
				age(s.LoginTime), digests(s), lunList(s.LUNs)})
		}
		table(e.Out, []string{"GATEWAY", "INITIATOR", "TARGET", "PORTAL", "FROM", "SINCE", "DIGESTS", "LUNS"}, rows)
	}
	if len(ss.Down) > 0 {
		fmt.Fprintf(e.Out, "gateways down (sessions unknown): %s\n", strings.Join(ss.Down, ", "))
	}
	return nil
}

func digests(s model.Session) string {
	h, d := s.HeaderDigest, s.DataDigest
	if h == "" {
		h = "None"
	}
	if d == "" {
		d = "None"
	}
	return h + "/" + d
}

var now = time.Now

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now().Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// info prints a node's details: its API document with -o json|yaml.
func (e *Env) info(ctx context.Context, p Path) error {
	switch p.Kind {
	case KRoot:
		i, err := e.Client.Info(ctx)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(i)
		}
		fields(e.Out, [][2]string{{"api", e.Client.URL()}, {"gateway", i.Gateway}, {"version", i.Version},
			{"api version", i.API}, {"config revision", fmt.Sprint(i.Revision)}})
		return nil
	case KCluster:
		c, err := e.Client.Cluster(ctx)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(c)
		}
		kv := [][2]string{{"fsid", c.FSID}, {"health", c.Health},
			{"mons", fmt.Sprintf("%d (%d in quorum)", c.Mons, c.Quorum)},
			{"osds", fmt.Sprintf("%d (%d up, %d in)", c.OSDs, c.OSDsUp, c.OSDsIn)},
			{"gateways", fmt.Sprintf("%d (%d live)", c.Gateways, c.Live)}}
		for _, h := range c.Checks {
			kv = append(kv, [2]string{"check " + h.Name, h.Severity + ": " + h.Summary})
		}
		fields(e.Out, kv)
		return nil
	case KPools, KPool:
		pools, err := e.Client.Pools(ctx)
		if err != nil {
			return err
		}
		if p.Kind == KPool {
			for _, pl := range pools {
				if pl.Name == p.Pool {
					if e.structured() {
						return e.emit(pl)
					}
					fields(e.Out, poolFields(pl))
					return nil
				}
			}
			return notFound("pool %s does not exist", p.Pool)
		}
		if e.structured() {
			return e.emit(pools)
		}
		var rows [][]string
		for _, pl := range pools {
			rows = append(rows, []string{pl.Name, poolType(pl), fmt.Sprint(pl.Disks), HumanSize(pl.Committed), HumanSize(pl.MaxAvail), HumanSize(pl.Used)})
		}
		table(e.Out, []string{"POOL", "TYPE", "DISKS", "COMMITTED", "AVAILABLE", "USED"}, rows)
		return nil
	case KDisk:
		return e.diskInfo(ctx, p.Disk())
	case KDisks, KDiskPool:
		disks, err := e.Client.Disks(ctx)
		if err != nil {
			return err
		}
		if p.Kind == KDiskPool {
			var in []model.Disk
			for _, d := range disks {
				if d.Pool == p.Pool {
					in = append(in, d)
				}
			}
			disks = in
		}
		if e.structured() {
			return e.emit(nonNil(disks))
		}
		var rows [][]string
		for _, d := range disks {
			m := "-"
			if d.Mapping != nil {
				m = fmt.Sprintf("%s LUN %d", d.Mapping.Target, d.Mapping.LUN)
			}
			rows = append(rows, []string{d.ID, HumanSize(d.Size), orDash(d.Owner), m})
		}
		table(e.Out, []string{"DISK", "SIZE", "OWNER", "MAPPED"}, rows)
		return nil
	case KTargets:
		var da model.DiscoveryAuth
		var ts []model.Target
		err := parallel(func() (err error) { da, err = e.Client.DiscoveryAuth(ctx); return }, func() (err error) { ts, err = e.Client.Targets(ctx); return })
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(map[string]any{"discovery_auth": da, "targets": ts})
		}
		mode := "None"
		if da.Enabled {
			mode = authMode(da.CHAP)
		}
		kv := [][2]string{{"discovery auth", mode}}
		if da.CHAP != nil {
			kv = append(kv, [2]string{"discovery user", da.CHAP.User})
			if da.CHAP.MutualUser != "" {
				kv = append(kv, [2]string{"discovery mutual user", da.CHAP.MutualUser})
			}
		}
		var iqns []string
		for _, t := range ts {
			iqns = append(iqns, t.IQN)
		}
		kv = append(kv, [2]string{"targets", joinOr(iqns, "none")})
		fields(e.Out, kv)
		return nil
	case KTarget:
		t, _, err := e.Client.Target(ctx, p.Target)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(t)
		}
		kv := [][2]string{{"target_iqn", t.IQN}, {"auth", authMode(t.CHAP)}}
		if t.CHAP != nil {
			kv = append(kv, [2]string{"chap user", t.CHAP.User})
			if t.CHAP.MutualUser != "" {
				kv = append(kv, [2]string{"chap mutual user", t.CHAP.MutualUser})
			}
		}
		acl := "enabled (only the hosts listed may log in)"
		if t.AllowAnyInitiator {
			acl = "disabled (any initiator may log in)"
		}
		var luns []string
		for _, l := range t.LUNs {
			luns = append(luns, fmt.Sprintf("%d: %s", l.ID, l.Disk))
		}
		kv = append(kv, [2]string{"acl", acl}, [2]string{"gateways", joinOr(t.Gateways, "none")},
			[2]string{"luns", joinOr(luns, "none")}, [2]string{"hosts", joinOr(t.Hosts, "none")},
			[2]string{"host groups", joinOr(t.HostGroups, "none")})
		fields(e.Out, kv)
		return nil
	case KTGateways:
		gws, err := e.Client.TargetGateways(ctx, p.Target)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(gws)
		}
		var rows [][]string
		for _, g := range gws {
			rows = append(rows, gatewayRow(g))
		}
		table(e.Out, gatewayHeader, rows)
		return nil
	case KTGateway:
		g, err := e.Client.Gateway(ctx, p.Name)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(g)
		}
		state := "DOWN"
		if g.Live {
			state = "UP"
		}
		kv := [][2]string{{"name", g.Name}, {"portals", strings.Join(g.Portals, ", ")}, {"tpg id", fmt.Sprint(g.TPGID)},
			{"state", state}, {"targets", joinOr(g.Targets, "none")}}
		if g.Live {
			kv = append(kv, [2]string{"version", g.Version}, [2]string{"uptime", (time.Duration(g.UptimeSeconds) * time.Second).String()},
				[2]string{"applied revision", fmt.Sprint(g.AppliedRevision)}, [2]string{"sessions", fmt.Sprint(g.Sessions)})
			if g.APIURL != "" {
				kv = append(kv, [2]string{"api", g.APIURL})
			}
		}
		fields(e.Out, kv)
		return nil
	case KTDisks, KTDisk, KHostLUN, KGroupDisk:
		luns, err := e.Client.LUNs(ctx, p.Target)
		if err != nil {
			return err
		}
		if p.Kind == KTDisks {
			if e.structured() {
				return e.emit(luns)
			}
			var rows [][]string
			for _, l := range luns {
				rows = append(rows, []string{fmt.Sprint(l.ID), l.Disk, HumanSize(l.Size), orDash(l.Owner)})
			}
			table(e.Out, []string{"LUN", "DISK", "SIZE", "OWNER"}, rows)
			return nil
		}
		for _, l := range luns {
			if (p.Kind == KHostLUN && l.ID == p.LUN) || (p.Kind != KHostLUN && l.Disk == p.Disk()) {
				if e.structured() {
					return e.emit(l)
				}
				fields(e.Out, [][2]string{{"lun_id", fmt.Sprint(l.ID)}, {"disk", l.Disk}, {"size", HumanSize(l.Size)}, {"owner", orDash(l.Owner)}})
				return nil
			}
		}
		return notFound("%s does not exist", p)
	case KHosts:
		hs, err := e.Client.Hosts(ctx, p.Target)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(hs)
		}
		var rows [][]string
		for _, h := range hs {
			rows = append(rows, []string{h.Initiator, authMode(h.CHAP), lunList(h.LUNs), orDash(h.Group), joinOr(h.LoggedIn, "-")})
		}
		table(e.Out, []string{"HOST", "AUTH", "LUNS", "GROUP", "LOGGED IN"}, rows)
		return nil
	case KHost, KGroupHost:
		ini := p.Name
		if p.Kind == KGroupHost {
			ini = p.Member
		}
		var h model.Host
		var ss model.Sessions
		err := parallel(func() (err error) { h, _, err = e.Client.Host(ctx, p.Target, ini); return },
			func() (err error) {
				ss, err = e.Client.Sessions(ctx, client.SessionFilter{Target: p.Target, Initiator: ini})
				return
			})
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(h)
		}
		kv := [][2]string{{"client_iqn", h.Initiator}, {"auth", authMode(h.CHAP)}}
		if h.CHAP != nil {
			kv = append(kv, [2]string{"chap user", h.CHAP.User})
			if h.CHAP.MutualUser != "" {
				kv = append(kv, [2]string{"chap mutual user", h.CHAP.MutualUser})
			}
		}
		var addrs []string
		for _, s := range ss.Sessions {
			addrs = append(addrs, s.RemoteAddress+" via "+s.Gateway)
		}
		kv = append(kv, [2]string{"group", orDash(h.Group)}, [2]string{"luns", lunList(h.LUNs)},
			[2]string{"logged in", joinOr(h.LoggedIn, "no")}, [2]string{"sessions", joinOr(addrs, "none")})
		if len(h.Addresses) > 0 {
			kv = append(kv, [2]string{"allowed addresses", strings.Join(h.Addresses, ", ")})
		}
		fields(e.Out, kv)
		return nil
	case KGroups:
		gs, err := e.Client.HostGroups(ctx, p.Target)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(gs)
		}
		var rows [][]string
		for _, g := range gs {
			rows = append(rows, []string{g.Name, joinOr(g.Members, "-"), lunList(g.LUNs)})
		}
		table(e.Out, []string{"GROUP", "HOSTS", "LUNS"}, rows)
		return nil
	case KGroup:
		g, _, err := e.Client.HostGroup(ctx, p.Target, p.Name)
		if err != nil {
			return err
		}
		if e.structured() {
			return e.emit(g)
		}
		fields(e.Out, [][2]string{{"name", g.Name}, {"hosts", joinOr(g.Members, "none")}, {"luns", lunList(g.LUNs)}})
		return nil
	}
	return nil
}

var gatewayHeader = []string{"GATEWAY", "PORTALS", "STATE", "SESSIONS", "APPLIED", "VERSION"}

func gatewayRow(g model.Gateway) []string {
	state := "DOWN"
	if g.Live {
		state = "UP"
	}
	return []string{g.Name, strings.Join(g.Portals, ","), state, fmt.Sprint(g.Sessions), fmt.Sprint(g.AppliedRevision), orDash(g.Version)}
}

func poolFields(pl model.Pool) [][2]string {
	pct := "-"
	if pl.MaxAvail > 0 {
		pct = fmt.Sprintf("%.0f%%", float64(pl.Committed)*100/float64(pl.MaxAvail))
	}
	return [][2]string{{"name", pl.Name}, {"type", pl.Type + " " + poolType(pl)}, {"rbd", fmt.Sprint(pl.RBD)},
		{"disks", fmt.Sprint(pl.Disks)}, {"commit", HumanSize(pl.Committed)}, {"available", HumanSize(pl.MaxAvail)},
		{"overcommit", pct}, {"stored", HumanSize(pl.Stored)}, {"used", HumanSize(pl.Used)}}
}

func (e *Env) diskInfo(ctx context.Context, id string) error {
	var d model.Disk
	var snaps []model.Snapshot
	var snapErr error
	err := parallel(func() (err error) { d, _, err = e.Client.Disk(ctx, id); return },
		func() error { snaps, snapErr = e.Client.Snapshots(ctx, id); return nil })
	if err != nil {
		return err
	}
	if e.structured() {
		return e.emit(d)
	}
	kv := [][2]string{{"disk", d.ID}, {"pool", d.Pool}, {"image", d.Image}, {"size", HumanSize(d.Size) + fmt.Sprintf(" (%d bytes)", d.Size)}}
	if d.ImageSize != nil && *d.ImageSize != d.Size {
		kv = append(kv, [2]string{"image size", HumanSize(*d.ImageSize) + " (differs from the configured size)"})
	}
	kv = append(kv, [2]string{"block size", fmt.Sprint(d.BlockSize)}, [2]string{"physical block size", fmt.Sprint(d.PhysicalBlockSize)},
		[2]string{"wwn", d.WWN}, [2]string{"serial", d.Serial},
		[2]string{"read only", fmt.Sprint(d.ReadOnly)})
	if d.Mapping != nil {
		kv = append(kv, [2]string{"mapped", fmt.Sprintf("%s LUN %d", d.Mapping.Target, d.Mapping.LUN)})
	} else {
		kv = append(kv, [2]string{"mapped", "no"})
	}
	kv = append(kv, [2]string{"owner", orDash(d.Owner)})
	if d.CephError != "" {
		kv = append(kv, [2]string{"ceph", "unavailable: " + d.CephError})
	} else {
		kv = append(kv, [2]string{"features", joinOr(d.Features, "none")}, [2]string{"lock owners", joinOr(d.LockOwners, "none")})
	}
	switch {
	case snapErr != nil:
		kv = append(kv, [2]string{"snapshots", "unavailable: " + shortErr(snapErr)})
	default:
		var names []string
		for _, s := range snaps {
			names = append(names, s.Name)
		}
		sort.Strings(names)
		kv = append(kv, [2]string{"snapshots", joinOr(names, "none")})
	}
	fields(e.Out, kv)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parallel runs fs at once and returns the first error.
func parallel(fs ...func() error) error {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
