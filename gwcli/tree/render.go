package tree

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/api/model"
)

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// HumanSize writes a byte count the way ceph-iscsi shows sizes: binary
// units, whole when exact, else one decimal ("90G", "1.5T", "9.9G").
func HumanSize(n int64) string {
	if n < 0 {
		return "-" + HumanSize(-n)
	}
	units := []string{"", "K", "M", "G", "T", "P", "E"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if strings.HasSuffix(s, ".0") && float64(int64(v)) != v {
		// 1023.96 rounds to "1024.0": keep the decimal honest.
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return s + units[i]
}

// authMode names the CHAP mode of credentials as ceph-iscsi does.
func authMode(c *model.CHAP) string {
	switch {
	case c == nil:
		return "None"
	case c.MutualUser != "":
		return "CHAP_MUTUAL"
	}
	return "CHAP"
}

func clusterSummary(c *model.Cluster, err error) string {
	if err != nil {
		return "unavailable: " + shortErr(err)
	}
	if c == nil {
		return ""
	}
	s := c.Health
	if c.Gateways > 0 {
		s += fmt.Sprintf(", Gateways: %d/%d live", c.Live, c.Gateways)
	}
	return s
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 70 {
		s = s[:67] + "..."
	}
	return s
}

func poolType(p model.Pool) string {
	if p.Type == "erasure" || p.ECK > 0 {
		return fmt.Sprintf("(%d+%d)", p.ECK, p.ECM)
	}
	if p.Size > 0 {
		return fmt.Sprintf("(x%d)", p.Size)
	}
	return "(" + p.Type + ")"
}

func poolSummary(p model.Pool) string {
	pct := "-"
	if p.MaxAvail > 0 {
		pct = strconv.FormatInt(int64(math.Round(float64(p.Committed)*100/float64(p.MaxAvail))), 10) + "%"
	}
	return fmt.Sprintf("%s, Commit: %s/%s (%s), Used: %s", poolType(p), HumanSize(p.Committed), HumanSize(p.MaxAvail), pct, HumanSize(p.Used))
}

func diskDesc(d model.Disk) string {
	s := HumanSize(d.Size)
	if d.Mapping != nil {
		s += fmt.Sprintf(", LUN %d", d.Mapping.LUN)
		if d.Owner != "" {
			s += ", Owner: " + d.Owner
		}
	} else {
		s += ", not mapped"
	}
	if d.ReadOnly {
		s += ", read-only"
	}
	return s
}

func diskSummary(d model.Disk) string { return d.ID + " (" + diskDesc(d) + ")" }

func targetSummary(t model.Target) string {
	return fmt.Sprintf("Auth: %s, Gateways: %d", authMode(t.CHAP), len(t.Gateways))
}

func gatewaySummary(g model.Gateway) string {
	state := "DOWN"
	if g.Live {
		state = "UP"
	}
	return strings.Join(g.Portals, ",") + " (" + state + ")"
}

func lunSummary(l model.LUN) string {
	owner := l.Owner
	if owner == "" {
		owner = "none"
	}
	return fmt.Sprintf("Owner: %s, Lun: %d", owner, l.ID)
}

func groupSummary(g model.HostGroup) string {
	return fmt.Sprintf("Hosts: %d, Disks: %d", len(g.Members), len(g.LUNs))
}

// hostSummary is "[LOGGED-IN (gw), ]Auth: …, Disks: n(size)[, Group: g]".
func hostSummary(h model.Host, luns map[uint64]model.LUN) string {
	var parts []string
	if len(h.LoggedIn) > 0 {
		parts = append(parts, "LOGGED-IN ("+strings.Join(h.LoggedIn, ",")+")")
	}
	parts = append(parts, "Auth: "+authMode(h.CHAP))
	d := fmt.Sprintf("Disks: %d", len(h.LUNs))
	if luns != nil {
		var total int64
		for _, id := range h.LUNs {
			total += luns[id].Size
		}
		d += "(" + HumanSize(total) + ")"
	}
	parts = append(parts, d)
	if h.Group != "" {
		parts = append(parts, "Group: "+h.Group)
	}
	return strings.Join(parts, ", ")
}

// node is one line of a listing.
type node struct {
	name, summary string
	children      []*node
}

func (n *node) add(name, summary string) *node {
	c := &node{name: name, summary: summary}
	n.children = append(n.children, c)
	return c
}

// build makes the listing of p from st, depth levels deep (0: all).
func build(st *State, p Path, depth int) *node {
	name := "/"
	if len(p.Elems) > 0 {
		name = p.Elems[len(p.Elems)-1]
	}
	n := &node{name: name}
	fill(st, p, n, depth)
	return n
}

// fill sets n's summary and adds depth levels of children (0: all, -1:
// none).
func fill(st *State, p Path, n *node, depth int) {
	next := depth - 1
	switch depth {
	case 0:
		next = 0
	case 1:
		next = -1
	}
	child := func(name, _ string, q Path) {
		if depth == -1 {
			return
		}
		fill(st, q, n.add(name, ""), next)
	}
	sub := func(name string) Path { q, _ := p.Child(name); return q }
	switch p.Kind {
	case KRoot:
		n.summary = "..."
		child("cluster", "", sub("cluster"))
		child("disks", "", sub("disks"))
		child("iscsi-targets", "", sub("iscsi-targets"))
	case KCluster:
		n.summary = clusterSummary(st.Cluster, st.ClusterErr)
		if st.Pools != nil || st.PoolsErr != nil {
			child("pools", "", sub("pools"))
		}
	case KPools:
		if st.PoolsErr != nil {
			n.summary = "unavailable: " + shortErr(st.PoolsErr)
			return
		}
		n.summary = "Pools: " + strconv.Itoa(len(st.Pools))
		for _, pl := range st.Pools {
			child(pl.Name, "", sub(pl.Name))
		}
	case KPool:
		for _, pl := range st.Pools {
			if pl.Name == p.Pool {
				n.summary = poolSummary(pl)
			}
		}
	case KDisks:
		var total int64
		pools := map[string]int64{}
		for _, d := range st.Disks {
			total += d.Size
			pools[d.Pool] += d.Size
		}
		n.summary = HumanSize(total) + ", Disks: " + strconv.Itoa(len(st.Disks))
		for _, pool := range sortedKeys(pools) {
			child(pool, "", sub(pool))
		}
	case KDiskPool:
		var total int64
		for _, d := range st.Disks {
			if d.Pool == p.Pool {
				total += d.Size
			}
		}
		n.summary = p.Pool + " (" + HumanSize(total) + ")"
		for _, d := range st.Disks {
			if d.Pool == p.Pool {
				child(d.Image, "", sub(d.Image))
			}
		}
	case KDisk:
		if d, ok := st.disk(p.Disk()); ok {
			n.summary = diskSummary(d)
		}
	case KTargets:
		da := "None"
		if st.DiscoveryAuth != nil && st.DiscoveryAuth.Enabled {
			da = authMode(st.DiscoveryAuth.CHAP)
		}
		n.summary = fmt.Sprintf("DiscoveryAuth: %s, Targets: %d", da, len(st.Targets))
		for _, t := range st.Targets {
			child(t.IQN, "", sub(t.IQN))
		}
	case KTarget:
		t, ok := st.target(p.Target)
		if !ok {
			return
		}
		n.summary = targetSummary(t)
		child("disks", "", sub("disks"))
		child("gateways", "", sub("gateways"))
		child("host-groups", "", sub("host-groups"))
		child("hosts", "", sub("hosts"))
	case KTDisks:
		t, _ := st.target(p.Target)
		n.summary = "Disks: " + strconv.Itoa(len(t.LUNs))
		for _, l := range t.LUNs {
			child(l.Disk, "", sub(l.Disk))
		}
	case KTDisk:
		t, _ := st.target(p.Target)
		for _, l := range t.LUNs {
			if l.Disk == p.Disk() {
				n.summary = lunSummary(l)
			}
		}
	case KTGateways:
		t, _ := st.target(p.Target)
		up, portals := 0, 0
		for _, name := range t.Gateways {
			if g, ok := st.gateway(name); ok {
				portals += len(g.Portals)
				if g.Live {
					up++
				}
			}
		}
		if st.Gateways == nil {
			n.summary = fmt.Sprintf("Gateways: %d", len(t.Gateways))
		} else {
			n.summary = fmt.Sprintf("Up: %d/%d, Portals: %d", up, len(t.Gateways), portals)
		}
		for _, name := range t.Gateways {
			child(name, "", sub(name))
		}
	case KTGateway:
		if g, ok := st.gateway(p.Name); ok {
			n.summary = gatewaySummary(g)
		}
	case KGroups:
		gs := st.HostGroups[p.Target]
		n.summary = "Groups: " + strconv.Itoa(len(gs))
		for _, g := range gs {
			child(g.Name, "", sub(g.Name))
		}
	case KGroup:
		g, ok := st.group(p.Target, p.Name)
		if !ok {
			return
		}
		n.summary = groupSummary(g)
		for _, m := range g.Members {
			child(m, "", sub(m))
		}
		t, _ := st.target(p.Target)
		for _, id := range g.LUNs {
			for _, l := range t.LUNs {
				if l.ID == id {
					child(l.Disk, "", sub(l.Disk))
				}
			}
		}
	case KGroupHost:
		n.summary = "host"
	case KGroupDisk:
		n.summary = "disk"
		t, _ := st.target(p.Target)
		for _, l := range t.LUNs {
			if l.Disk == p.Disk() {
				n.summary = fmt.Sprintf("disk, Lun: %d", l.ID)
			}
		}
	case KHosts:
		t, _ := st.target(p.Target)
		acl := "ACL_ENABLED"
		if t.AllowAnyInitiator {
			acl = "ACL_DISABLED"
		}
		hs := st.Hosts[p.Target]
		n.summary = fmt.Sprintf("Auth: %s, Hosts: %d", acl, len(hs))
		for _, h := range hs {
			child(h.Initiator, "", sub(h.Initiator))
		}
	case KHost:
		h, ok := st.host(p.Target, p.Name)
		if !ok {
			return
		}
		t, _ := st.target(p.Target)
		luns := map[uint64]model.LUN{}
		for _, l := range t.LUNs {
			luns[l.ID] = l
		}
		n.summary = hostSummary(h, luns)
		for _, id := range h.LUNs {
			child("lun"+itoa(id), "", sub("lun"+itoa(id)))
		}
	case KHostLUN:
		t, _ := st.target(p.Target)
		for _, l := range t.LUNs {
			if l.ID == p.LUN {
				owner := l.Owner
				if owner == "" {
					owner = "none"
				}
				n.summary = fmt.Sprintf("%s(%s), Owner: %s", l.Disk, HumanSize(l.Size), owner)
			}
		}
	}
}

// writeTree prints a listing as configshell does:
//
//	o- disks ..................................... [180G, Disks: 2]
//	| o- rbd ......................................... [rbd (180G)]
func writeTree(w io.Writer, n *node, width int) {
	var lines []string
	var walk func(n *node, indent string, last bool, top bool)
	walk = func(n *node, indent string, last bool, top bool) {
		lines = append(lines, treeLine(indent, n.name, n.summary, width))
		childIndent := indent + "  "
		if !top && !last {
			childIndent = indent + "| "
		}
		if top {
			childIndent = indent + "  "
		}
		for i, c := range n.children {
			walk(c, childIndent, i == len(n.children)-1, false)
		}
	}
	walk(n, "", true, true)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func treeLine(indent, name, summary string, width int) string {
	if summary == "" {
		summary = "..."
	}
	left := indent + "o- " + name + " "
	right := " [" + summary + "]"
	dots := width - len([]rune(left)) - len([]rune(right))
	if dots < 3 {
		dots = 3
	}
	return left + strings.Repeat(".", dots) + right
}

// table prints rows with aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) && len([]rune(c)) > widths[i] {
				widths[i] = len([]rune(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
}

// fields prints "key: value" lines with aligned values.
func fields(w io.Writer, kv [][2]string) {
	width := 0
	for _, f := range kv {
		if len(f[0]) > width {
			width = len(f[0])
		}
	}
	for _, f := range kv {
		fmt.Fprintf(w, "%-*s %s\n", width+1, f[0]+":", f[1])
	}
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}

func lunList(ids []uint64) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for i, id := range sorted {
		s[i] = itoa(id)
	}
	return strings.Join(s, ", ")
}
