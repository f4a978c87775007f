package tree

import (
	"fmt"
	"strings"

	"github.com/rbdgw/rbdgw/api/model"
)

// Suggestion is one completion: the text that replaces the word being
// typed, and a one-line description.
type Suggestion struct {
	Text, Desc string
}

// Complete returns the completions of the last word of text (what is
// before the cursor) at the current node. It reads live names from the
// cache only, so it never waits on the network beyond the cache's cold
// wait.
func (e *Env) Complete(text string) []Suggestion {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	words := strings.Fields(text)
	cur := ""
	if !strings.HasSuffix(text, " ") && !strings.HasSuffix(text, "\t") {
		cur = words[len(words)-1]
		words = words[:len(words)-1]
	}
	at := e.Cwd
	var out []Suggestion
	switch {
	case len(words) == 0:
		if looksLikePath(cur) {
			out = e.completePath(at, cur)
		} else {
			out = commandSuggestions(at.Kind)
		}
	case lookup(at.Kind, words[0]) != nil:
		out = e.completeArgs(at, lookup(at.Kind, words[0]), words[1:], cur)
	default:
		p, err := Resolve(at, words[0])
		if err != nil {
			return nil
		}
		if len(words) == 1 {
			out = commandSuggestions(p.Kind)
		} else if c := lookup(p.Kind, words[1]); c != nil {
			out = e.completeArgs(p, c, words[2:], cur)
		}
	}
	return filter(out, cur)
}

func filter(s []Suggestion, prefix string) []Suggestion {
	var out []Suggestion
	lp := strings.ToLower(prefix)
	for _, x := range s {
		if strings.HasPrefix(strings.ToLower(x.Text), lp) {
			out = append(out, x)
		}
	}
	return out
}

func commandSuggestions(k Kind) []Suggestion {
	var out []Suggestion
	for _, c := range Commands(k) {
		out = append(out, Suggestion{c.Name, c.Summary})
	}
	return out
}

// leaf kinds have no children.
func leaf(k Kind) bool {
	switch k {
	case KPool, KDisk, KTDisk, KTGateway, KHostLUN, KGroupHost, KGroupDisk:
		return true
	}
	return false
}

// completePath completes a path word relative to at.
func (e *Env) completePath(at Path, w string) []Suggestion {
	for cut := strings.LastIndex(w, "/"); ; cut = strings.LastIndex(w[:cut], "/") {
		dir, base := w[:cut+1], w[cut+1:]
		p, err := at, error(nil)
		if dir != "" {
			p, err = Resolve(at, dir)
		}
		if err == nil {
			var out []Suggestion
			for _, c := range e.Cache.Children(p) {
				if !strings.HasPrefix(strings.ToLower(c.Name), strings.ToLower(base)) {
					continue
				}
				text := dir + c.Name
				if q, err := p.Child(c.Name); err == nil && !leaf(q.Kind) {
					text += "/"
				}
				out = append(out, Suggestion{text, c.Desc})
			}
			if base == "" && dir != "" && len(p.Elems) > 0 {
				out = append(out, Suggestion{dir + "..", "up to " + p.Parent().String()})
			}
			return out
		}
		if cut < 0 {
			return nil
		}
	}
}

// completeArgs completes the arguments of c at p; args are the complete
// words typed after the command, cur the one being typed.
func (e *Env) completeArgs(p Path, c *Command, args []string, cur string) []Suggestion {
	if c.Rewrite != nil {
		args = c.Rewrite(args)
	}
	given := Args{}
	nbare := 0
	byName := map[string]Param{}
	for _, prm := range c.Params {
		byName[prm.Name] = prm
	}
	for _, w := range args {
		if k, v, ok := strings.Cut(w, "="); ok {
			if prm, found := byName[k]; found && prm.Keyword {
				given[k] = v
				continue
			}
		}
		if prm := nextPositional(c.Params, given, 0); prm != nil {
			given[prm.Name] = w
		}
		nbare++
	}
	if k, v, ok := strings.Cut(cur, "="); ok {
		prm, found := byName[k]
		if !found || !prm.Keyword {
			return nil
		}
		var out []Suggestion
		prm.Positional = false // key=value: never the <pool>/<image> short form
		for _, s := range e.values(p, c, prm, given, v) {
			out = append(out, Suggestion{k + "=" + s.Text, s.Desc})
		}
		return out
	}
	var out []Suggestion
	if prm := nextPositional(c.Params, given, 0); prm != nil {
		out = append(out, e.values(p, c, *prm, given, cur)...)
	}
	for _, prm := range c.Params {
		if prm.Keyword && !given.Has(prm.Name) && !typedBare(prm) {
			if prm.Name == "pool" && given.Has("image") {
				continue
			}
			out = append(out, Suggestion{prm.Name + "=", prm.Desc})
		}
	}
	return out
}

// typedBare: a positional parameter whose values are the shell's own
// paths or command names is typed bare, as in any shell (cd takes a path,
// help a command); its key= form is accepted but not offered, where it
// would only stand among the values it hints at.
func typedBare(prm Param) bool {
	return prm.Positional && (prm.Kind == VPath || prm.Kind == VCommand)
}

// values are the candidate values of one parameter, live from the cache.
func (e *Env) values(p Path, c *Command, prm Param, given Args, cur string) []Suggestion {
	k := e.Cache
	var out []Suggestion
	switch prm.Kind {
	case VPath:
		return e.completePath(p, cur)
	case VEnum:
		for _, v := range prm.Enum {
			out = append(out, Suggestion{v, prm.Desc})
		}
	case VBool:
		out = []Suggestion{{"true", prm.Desc}, {"false", prm.Desc}}
	case VDepth:
		out = []Suggestion{{"1", "children only"}, {"2", "two levels"}}
	case VPhysicalBlockSize:
		out = []Suggestion{{"4096", "the default: RBD's allocation unit"}, {"512", "same as a 512-byte logical block"},
			{"8192", "8 KiB"}, {"65536", "64 KiB"}}
	case VCommand:
		out = commandSuggestions(p.Kind)
	case VUser:
		if prm.Name == "username" {
			out = append(out, Suggestion{"nochap", "remove CHAP"})
		}
	case VPool:
		short := c.Rewrite != nil && prm.Positional && prm.Name == "pool"
		if short && strings.Contains(cur, "/") {
			// "<pool>/<image>" short form: images of that pool.
			pool := cur[:strings.Index(cur, "/")]
			if c.Name == "attach" {
				for _, s := range e.importable(pool) {
					out = append(out, Suggestion{pool + "/" + s.Text, s.Desc})
				}
			}
			return out
		}
		for _, pl := range k.Pools() {
			text := pl.Name
			if short {
				text += "/"
			}
			out = append(out, Suggestion{text, poolSummary(pl)})
		}
	case VImage:
		if pool := given["pool"]; pool != "" {
			out = e.importable(pool)
		}
	case VDisk:
		for _, d := range k.Disks() {
			if c.Name == "add" && d.Mapping != nil && d.Mapping.Target != p.Target {
				continue // mapped elsewhere: the API would refuse it
			}
			out = append(out, Suggestion{d.ID, diskDesc(d)})
		}
	case VTargetDisk:
		if t, ok := k.Target(p.Target); ok {
			for _, l := range t.LUNs {
				out = append(out, Suggestion{l.Disk, fmt.Sprintf("LUN %d, %s", l.ID, HumanSize(l.Size))})
			}
		}
	case VHostDisk, VGroupDisk:
		var seen []uint64
		if prm.Kind == VHostDisk {
			for _, h := range k.Hosts(p.Target) {
				if h.Initiator == p.Name {
					seen = h.LUNs
				}
			}
		} else {
			for _, g := range k.HostGroups(p.Target) {
				if g.Name == p.Name {
					seen = g.LUNs
				}
			}
		}
		t, _ := k.Target(p.Target)
		mapped := map[string]model.LUN{}
		for _, l := range t.LUNs {
			mapped[l.Disk] = l
		}
		if given["action"] == "remove" {
			for _, l := range t.LUNs {
				if contains(seen, l.ID) {
					out = append(out, Suggestion{l.Disk, fmt.Sprintf("LUN %d, %s", l.ID, HumanSize(l.Size))})
				}
			}
			return out
		}
		for _, d := range k.Disks() {
			l, isMapped := mapped[d.ID]
			switch {
			case isMapped && contains(seen, l.ID):
				continue
			case isMapped:
				out = append(out, Suggestion{d.ID, fmt.Sprintf("LUN %d, %s", l.ID, HumanSize(d.Size))})
			case d.Mapping == nil:
				out = append(out, Suggestion{d.ID, HumanSize(d.Size) + ", not mapped yet (will be)"})
			}
		}
	case VTargetIQN:
		for _, t := range k.Targets() {
			out = append(out, Suggestion{t.IQN, targetSummary(t)})
		}
	case VGateway:
		t, _ := k.Target(p.Target)
		for _, g := range k.Gateways() {
			// Only create wants those not serving the target yet; for
			// sessions and top at a target its own gateways are the point.
			if c != nil && c.Name == "create" && contains(t.Gateways, g.Name) {
				continue
			}
			out = append(out, Suggestion{g.Name, gatewaySummary(g)})
		}
	case VTargetGateway:
		t, _ := k.Target(p.Target)
		gws := k.Gateways()
		for _, n := range t.Gateways {
			desc := ""
			for _, g := range gws {
				if g.Name == n {
					desc = gatewaySummary(g)
				}
			}
			out = append(out, Suggestion{n, desc})
		}
	case VPortals:
		for _, g := range k.Gateways() {
			if g.Name == given["gateway_name"] {
				out = append(out, Suggestion{strings.Join(g.Portals, ","), "portals of registered gateway " + g.Name})
			}
		}
	case VHostIQN:
		switch {
		case p.Kind == KGroup && given["action"] == "remove":
			for _, g := range k.HostGroups(p.Target) {
				if g.Name == p.Name {
					for _, m := range g.Members {
						out = append(out, Suggestion{m, "member of " + g.Name})
					}
				}
			}
		default:
			for _, h := range k.Hosts(p.Target) {
				if p.Kind == KGroup && h.Group != "" {
					continue
				}
				out = append(out, Suggestion{h.Initiator, hostSummary(h, nil)})
			}
		}
	case VGroup:
		for _, g := range k.HostGroups(p.Target) {
			out = append(out, Suggestion{g.Name, groupSummary(g)})
		}
	case VLUN:
		t, _ := k.Target(p.Target)
		used := map[uint64]bool{}
		for _, l := range t.LUNs {
			used[l.ID] = true
		}
		for id := uint64(0); id <= MaxLUNID && len(out) < 3; id++ {
			if !used[id] {
				out = append(out, Suggestion{itoa(id), "free LUN id"})
			}
		}
	case VSnapshot:
		if given["action"] == "delete" {
			for _, s := range k.Snapshots(p.Disk()) {
				out = append(out, Suggestion{s.Name, "snapshot, " + HumanSize(s.Size)})
			}
		}
	}
	return out
}

// importable lists a pool's images, those not yet disks first.
func (e *Env) importable(pool string) []Suggestion {
	var out, exported []Suggestion
	for _, im := range e.Cache.Images(pool) {
		if im.Disk {
			exported = append(exported, Suggestion{im.Name, "already a disk"})
			continue
		}
		out = append(out, Suggestion{im.Name, "image not exported yet"})
	}
	return append(out, exported...)
}
