package tree

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

// Command is one command of a node.
type Command struct {
	Name    string
	Summary string
	Usage   string
	Params  []Param
	// Rewrite normalises words before parsing (ceph-iscsi's short forms).
	Rewrite func([]string) []string
	Run     func(ctx context.Context, e *Env, at Path, a Args) error
}

// global commands work on every node.
var global []*Command

// byKind are the commands of each kind of node.
var byKind = map[Kind][]*Command{}

func init() {
	global = globalCommands()
	byKind[KRoot] = rootCommands()
	byKind[KDisks] = disksCommands()
	byKind[KDisk] = diskCommands()
	byKind[KTargets] = targetsCommands()
	byKind[KTarget] = targetCommands()
	byKind[KTGateways] = gatewaysCommands()
	byKind[KTDisks] = targetDisksCommands()
	byKind[KHosts] = hostsCommands()
	byKind[KHost] = hostCommands()
	byKind[KGroups] = groupsCommands()
	byKind[KGroup] = groupCommands()
}

// lookup finds a command at a node: the node's own first, then the global
// ones.
func lookup(k Kind, name string) *Command {
	for _, c := range byKind[k] {
		if c.Name == name {
			return c
		}
	}
	for _, c := range global {
		if c.Name == name || (name == "quit" && c.Name == "exit") {
			return c
		}
	}
	return nil
}

// Commands lists the commands available at a node, its own first.
func Commands(k Kind) []*Command {
	out := append([]*Command(nil), byKind[k]...)
	for _, g := range global {
		if !containsCmd(out, g.Name) {
			out = append(out, g)
		}
	}
	return out
}

func containsCmd(cs []*Command, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

func commandNames(k Kind) []string {
	var out []string
	for _, c := range Commands(k) {
		out = append(out, c.Name)
	}
	return out
}

// Parameter helpers.
func pos(name string, kind ValueKind, required bool, desc string) Param {
	return Param{Name: name, Positional: true, Keyword: true, Required: required, Kind: kind, Desc: desc}
}

func kw(name string, kind ValueKind, desc string) Param {
	return Param{Name: name, Keyword: true, Kind: kind, Desc: desc}
}

func action(desc string, enum ...string) Param {
	return Param{Name: "action", Positional: true, Required: true, Kind: VEnum, Enum: enum, Desc: desc}
}

var chapParams = []Param{
	pos("username", VUser, true, "CHAP user name, or nochap to remove CHAP"),
	pos("password", VSecret, false, "CHAP secret (12-16 characters)"),
	pos("mutual_username", VUser, false, "user name the target answers with (mutual CHAP)"),
	pos("mutual_password", VSecret, false, "secret the target answers with (mutual CHAP)"),
}

// The validator names the fields of the configuration file (secret,
// mutual_user); its messages name gwcli's parameters instead.
var (
	chapFieldNames = regexp.MustCompile(`\b(mutual_user|mutual_secret|user|secret)\b`)
	chapParamOf    = map[string]string{"user": "username", "secret": "password", "mutual_user": "mutual_username", "mutual_secret": "mutual_password"}
)

// chapArgs reads username=/password=/mutual_*: nil for nochap.
func chapArgs(cmd string, a Args) (*model.CHAP, error) {
	if a["username"] == "nochap" {
		if a.Has("password") || a.Has("mutual_username") || a.Has("mutual_password") {
			return nil, usagef("%s nochap takes no other argument", cmd)
		}
		return nil, nil
	}
	if !a.Has("password") {
		return nil, usagef("%s: missing password (or use %s nochap)", cmd, cmd)
	}
	c := config.CHAP{User: a["username"], Secret: a["password"], MutualUser: a["mutual_username"], MutualSecret: a["mutual_password"]}
	if err := c.Validate(); err != nil {
		return nil, usagef("%s: %s", cmd, chapFieldNames.ReplaceAllStringFunc(err.Error(), func(f string) string { return chapParamOf[f] }))
	}
	return &model.CHAP{User: c.User, Secret: c.Secret, MutualUser: c.MutualUser, MutualSecret: c.MutualSecret}, nil
}

func chapWord(c *model.CHAP) string {
	if c == nil {
		return "no CHAP"
	}
	if c.MutualUser != "" {
		return "mutual CHAP (user " + c.User + ")"
	}
	return "CHAP (user " + c.User + ")"
}

// --- global commands

func globalCommands() []*Command {
	return []*Command{
		{Name: "ls", Summary: "list the tree below a node with status summaries", Usage: "ls [path] [depth]",
			Params: []Param{pos("path", VPath, false, "node to list (default: here)"), pos("depth", VDepth, false, "levels to show (default: all)")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				p, err := Resolve(at, a["path"])
				if err != nil {
					return err
				}
				depth := 0
				if a.Has("depth") {
					fmt.Sscan(a["depth"], &depth)
				}
				return e.ls(ctx, p, depth)
			}},
		{Name: "cd", Summary: "go to a node (absolute, relative, .., /, - for the previous one)", Usage: "cd [path]",
			Params: []Param{pos("path", VPath, false, "node to go to (default: /)")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				if a["path"] == "-" {
					return e.cd(ctx, e.prev)
				}
				p, err := Resolve(at, a["path"])
				if err != nil {
					return err
				}
				return e.cd(ctx, p)
			}},
		{Name: "pwd", Summary: "print the current node", Usage: "pwd",
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				fmt.Fprintln(e.Out, at)
				return nil
			}},
		{Name: "info", Summary: "show the node's details", Usage: "info [path]",
			Params: []Param{pos("path", VPath, false, "node to show (default: here)")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				p, err := Resolve(at, a["path"])
				if err != nil {
					return err
				}
				return e.info(ctx, p)
			}},
		{Name: "help", Summary: "list the commands here, or explain one", Usage: "help [command]",
			Params: []Param{pos("command", VCommand, false, "command to explain")},
			Run:    func(ctx context.Context, e *Env, at Path, a Args) error { return e.help(at, a["command"]) }},
		{Name: "exit", Summary: "leave gwcli (also quit, Ctrl-D)", Usage: "exit",
			Run: func(ctx context.Context, e *Env, at Path, a Args) error { e.Exit = true; return nil }},
		{Name: "export", Summary: "print the whole configuration (secrets masked)", Usage: "export [format=json|yaml]",
			Params: []Param{{Name: "format", Keyword: true, Positional: true, Kind: VEnum, Enum: []string{"json", "yaml"}, Desc: "document format"}},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				format := a["format"]
				if format == "" {
					format = "json"
					if e.Format == FormatYAML {
						format = "yaml"
					}
				}
				raw, err := e.Client.Export(ctx, format)
				if err != nil {
					return err
				}
				if format == "json" {
					var b strings.Builder
					if err := indentJSON(&b, raw); err == nil {
						raw = []byte(b.String())
					}
				}
				_, err = fmt.Fprintln(e.Out, strings.TrimRight(string(raw), "\n"))
				return err
			}},
		{Name: "sessions", Summary: "live iSCSI sessions (of this node's target or host)", Usage: "sessions [gateway=<name>]",
			Params: []Param{kw("gateway", VGateway, "only this gateway's sessions")},
			Run:    func(ctx context.Context, e *Env, at Path, a Args) error { return e.sessions(ctx, at, a["gateway"]) }},
		{Name: "refresh", Summary: "forget cached completion data", Usage: "refresh",
			Run: func(ctx context.Context, e *Env, at Path, a Args) error { e.Cache.Invalidate(); return nil }},
		topCommand(), eventsCommand(),
	}
}

// --- /disks

// diskShortForm turns ceph-iscsi's "create <pool>/<image> <size> [count]"
// into "create pool=<pool> image=<image> <size> [count]".
func diskShortForm(words []string) []string {
	out := make([]string, 0, len(words)+1)
	done := false
	for _, w := range words {
		if !done && !strings.Contains(w, "=") && strings.Contains(w, "/") {
			pool, image, _ := strings.Cut(w, "/")
			out = append(out, "pool="+pool, "image="+image)
			done = true
			continue
		}
		out = append(out, w)
	}
	return out
}

func disksCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "create an RBD image and export it as a disk",
			Usage: "create pool=<pool> image=<image> size=<N[M|G|T]> [count=<n>] | create <pool>/<image> <size> [<count>]",
			Params: []Param{pos("pool", VPool, true, "Ceph pool"), pos("image", VText, true, "new image name"),
				pos("size", VSize, true, "size, e.g. 90G (binary units)"), pos("count", VCount, false, "create <image>1..<image>N"),
				blockSizeParam, physicalBlockSizeParam, kw("data_pool", VPool, "erasure-coded data pool"),
				kw("wwn", VText, "16 hex digits (generated when absent)"), kw("serial", VText, "unit serial (generated when absent)")},
			Rewrite: diskShortForm,
			Run:     createDisks},
		{Name: "attach", Summary: "export an existing RBD image as a disk, at its size",
			Usage: "attach pool=<pool> image=<image> | attach <pool>/<image>",
			Params: []Param{pos("pool", VPool, true, "Ceph pool"), pos("image", VImage, true, "existing image"), blockSizeParam, physicalBlockSizeParam,
				kw("wwn", VText, "16 hex digits"), kw("serial", VText, "unit serial")},
			Rewrite: diskShortForm,
			Run:     attachDisk},
		{Name: "resize", Summary: "grow a disk and its image", Usage: "resize <pool>/<image> <size>",
			Params: []Param{pos("disk", VDisk, true, "disk to grow"), pos("size", VSize, true, "new size, e.g. 100G")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				return resizeDisk(ctx, e, a["disk"], a["size"])
			}},
		{Name: "delete", Summary: "remove a disk and DELETE its RBD image", Usage: "delete <pool>/<image>",
			Params: []Param{pos("disk", VDisk, true, "disk to delete with its image")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				r, err := e.Client.DeleteDisk(ctx, a["disk"], true)
				if err != nil {
					return err
				}
				e.left(at, a["disk"])
				return e.done("ok: deleted disk "+a["disk"]+" and its image", r)
			}},
		{Name: "detach", Summary: "remove a disk from the gateways, keeping its RBD image", Usage: "detach <pool>/<image>",
			Params: []Param{pos("disk", VDisk, true, "disk to detach")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				r, err := e.Client.DeleteDisk(ctx, a["disk"], false)
				if err != nil {
					return err
				}
				e.left(at, a["disk"])
				return e.done("ok: detached disk "+a["disk"]+" (the image stays in Ceph)", r)
			}},
		{Name: "info", Summary: "show the disks, or one disk's details", Usage: "info [<pool>/<image>]",
			Params: []Param{pos("disk", VDisk, false, "disk to show")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				if a.Has("disk") {
					p, _ := Resolve(Root, "/disks/"+a["disk"])
					return e.info(ctx, p)
				}
				return e.info(ctx, at)
			}},
	}
}

var (
	blockSizeParam = Param{Name: "block_size", Keyword: true, Kind: VEnum, Enum: []string{"512", "4096"},
		Desc: "logical block size (default 512)"}
	physicalBlockSizeParam = Param{Name: "physical_block_size", Keyword: true, Kind: VPhysicalBlockSize,
		Desc: "physical block size initiators align I/O to: a power of two, at least block_size (default 4096)"}
)

// maxBlocksPerPhysical is the API's limit on physical_block_size /
// block_size (2^15, what READ CAPACITY(16) can report).
const maxBlocksPerPhysical = 1 << 15

func diskPut(cmd string, a Args) (model.DiskPut, error) {
	var in model.DiskPut
	switch a["block_size"] {
	case "":
	case "512":
		in.BlockSize = 512
	case "4096":
		in.BlockSize = 4096
	default:
		return in, usagef("%s: block_size %q: expected 512 or 4096", cmd, a["block_size"])
	}
	if a.Has("physical_block_size") {
		p, err := parsePhysicalBlockSize(a["physical_block_size"])
		if err != nil {
			return in, usagef("%s: %v", cmd, err)
		}
		bs := max(in.BlockSize, 512)
		if p < bs || p/bs > maxBlocksPerPhysical {
			return in, usagef("%s: physical_block_size %d: must be from the block size (%d) to %d blocks of it", cmd, p, bs, maxBlocksPerPhysical)
		}
		in.PhysicalBlockSize = p
	}
	in.DataPool, in.WWN, in.Serial = a["data_pool"], a["wwn"], a["serial"]
	return in, nil
}

func createDisks(ctx context.Context, e *Env, at Path, a Args) error {
	pool, image := a["pool"], a["image"]
	if err := simpleName(pool, "pool name"); err != nil {
		return usagef("create: %v", err)
	}
	if err := simpleName(image, "image name"); err != nil {
		return usagef("create: %v", err)
	}
	size, _ := model.ParseSize(a["size"])
	in, err := diskPut("create", a)
	if err != nil {
		return err
	}
	s := model.Size(size)
	in.Size = &s
	count := 1
	if a.Has("count") {
		fmt.Sscan(a["count"], &count)
		if in.WWN != "" || in.Serial != "" {
			return usagef("create: count cannot be combined with wwn or serial (each disk needs its own)")
		}
	}
	ids := []string{pool + "/" + image}
	if count > 1 {
		ids = ids[:0]
		for i := 1; i <= count; i++ {
			ids = append(ids, fmt.Sprintf("%s/%s%d", pool, image, i))
		}
	}
	// Existing disks are refused here first, so that count= does not
	// create some of its disks and stop at one that exists; each
	// create-only write then closes the race with another creator (the API
	// refuses it before it touches the image).
	existing, err := e.Client.Disks(ctx)
	if err != nil {
		return err
	}
	for _, d := range existing {
		if contains(ids, d.ID) {
			return conflict(model.CodeExists, "disk %s already exists (resize grows it)", d.ID)
		}
	}
	var results []client.Result
	for _, id := range ids {
		r, err := e.Client.CreateDisk(ctx, id, in)
		if err != nil {
			if len(results) > 0 {
				_ = e.done(fmt.Sprintf("ok: created %d of %d disks", len(results), len(ids)), results...)
			}
			return exists(err, "disk %s already exists (resize grows it)", id)
		}
		results = append(results, r)
	}
	msg := "ok: created disk " + ids[0] + " (" + HumanSize(size) + ")"
	if len(ids) > 1 {
		msg = fmt.Sprintf("ok: created %d disks %s..%s (%s each)", len(ids), ids[0], ids[len(ids)-1], HumanSize(size))
	}
	return e.done(msg, results...)
}

func attachDisk(ctx context.Context, e *Env, at Path, a Args) error {
	id := a["pool"] + "/" + a["image"]
	if err := diskID(id); err != nil {
		return usagef("attach: %v", err)
	}
	in, err := diskPut("attach", a)
	if err != nil {
		return err
	}
	// Without a size the API changes nothing in Ceph, so create-only
	// alone refuses an existing disk.
	r, err := e.Client.CreateDisk(ctx, id, in)
	if err != nil {
		return exists(err, "disk %s already exists", id)
	}
	return e.done("ok: attached image "+id+" as a disk", r)
}

// resizeDisk grows a disk. The PUT carries the disk's other settings
// read just before (If-Match), so that a resize changes nothing else.
func resizeDisk(ctx context.Context, e *Env, id, sizeArg string) error {
	size, _ := model.ParseSize(sizeArg)
	var r client.Result
	err := retryIfMatch(func() error {
		d, etag, err := e.Client.Disk(ctx, id)
		if err != nil {
			return err
		}
		if size < d.Size {
			return usagef("resize: disk %s is %s; disks only grow", id, HumanSize(d.Size))
		}
		s := model.Size(size)
		r, err = e.Client.PutDisk(ctx, id, model.DiskPut{Size: &s, ReadOnly: d.ReadOnly, BlockSize: d.BlockSize}, etag)
		return err
	})
	if err != nil {
		return err
	}
	return e.done("ok: disk "+id+" is now "+HumanSize(size), r)
}

// left moves the current node up to at when it was at or below at's
// child name, which a delete has just removed.
func (e *Env) left(at Path, name string) {
	if e.Client.DryRun() {
		return
	}
	gone, err := at.Child(name)
	if err != nil {
		return
	}
	if cur := e.Cwd.String() + "/"; strings.HasPrefix(cur, gone.String()+"/") {
		e.prev, e.Cwd = at, at
	}
	if prev := e.prev.String() + "/"; strings.HasPrefix(prev, gone.String()+"/") {
		e.prev = at
	}
}

// retryIfMatch runs a read-modify-write until it does not lose a race
// (HTTP 412), five times at most.
func retryIfMatch(f func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = f(); !client.IsPreconditionFailed(err) {
			return err
		}
		time.Sleep(time.Duration(20*(attempt+1)) * time.Millisecond)
	}
	return err
}

// --- /disks/<pool>/<image>

func diskCommands() []*Command {
	return []*Command{
		{Name: "resize", Summary: "grow the disk and its image", Usage: "resize <size>",
			Params: []Param{pos("size", VSize, true, "new size, e.g. 100G")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				return resizeDisk(ctx, e, at.Disk(), a["size"])
			}},
		{Name: "snapshot", Summary: "create, delete or list snapshots of the image", Usage: "snapshot create|delete <name> | snapshot list",
			Params: []Param{action("create, delete or list", "create", "delete", "list"), pos("name", VSnapshot, false, "snapshot name")},
			Run:    snapshot},
	}
}

func snapshot(ctx context.Context, e *Env, at Path, a Args) error {
	id := at.Disk()
	name := a["name"]
	if a["action"] != "list" {
		if name == "" {
			return usagef("snapshot %s: missing name", a["action"])
		}
		if strings.ContainsAny(name, "/@ ") {
			return usagef("snapshot name %q: '/', '@' and spaces are not allowed", name)
		}
	}
	switch a["action"] {
	case "create":
		r, err := e.Client.CreateSnapshot(ctx, id, name)
		if err != nil {
			return err
		}
		return e.done("ok: created snapshot "+id+"@"+name, r)
	case "delete":
		r, err := e.Client.DeleteSnapshot(ctx, id, name)
		if err != nil {
			return err
		}
		return e.done("ok: deleted snapshot "+id+"@"+name, r)
	}
	if name != "" {
		return usagef("snapshot list takes no name")
	}
	snaps, err := e.Client.Snapshots(ctx, id)
	if err != nil {
		return err
	}
	if e.structured() {
		return e.emit(snaps)
	}
	rows := make([][]string, 0, len(snaps))
	for _, s := range snaps {
		rows = append(rows, []string{s.Name, fmt.Sprint(s.ID), HumanSize(s.Size)})
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.Out, "no snapshots")
		return nil
	}
	table(e.Out, []string{"NAME", "ID", "SIZE"}, rows)
	return nil
}

// --- /

// rootCommands: ceph-iscsi walkthroughs (seed 001 among them) type
// "create <target_iqn>" at / and then "cd <iqn>/gateways"; both work
// (a target's name at / is a path to it, see walk).
func rootCommands() []*Command {
	create := targetsCommands()[0]
	return []*Command{{Name: "create", Summary: "create a target (as in /iscsi-targets)",
		Usage:  "create <target_iqn> (disks are created in /disks)",
		Params: create.Params,
		Run: func(ctx context.Context, e *Env, at Path, a Args) error {
			targets, _ := Resolve(Root, "/iscsi-targets")
			return create.Run(ctx, e, targets, a)
		}}}
}

// --- /iscsi-targets

func targetsCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "create a target", Usage: "create <target_iqn>",
			Params: []Param{pos("target_iqn", VNewIQN, true, "iSCSI name of the new target")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				iqn := canonical(a["target_iqn"])
				r, err := e.Client.CreateTarget(ctx, iqn, model.TargetPut{Gateways: []string{}})
				if err != nil {
					return exists(err, "target %s already exists", iqn)
				}
				return e.done("ok: created target "+iqn, r)
			}},
		{Name: "delete", Summary: "delete a target with its LUN maps, hosts and host groups", Usage: "delete <target_iqn>",
			Params: []Param{pos("target_iqn", VTargetIQN, true, "target to delete")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				iqn := canonical(a["target_iqn"])
				// The API deletes a target of any size, in parts when one
				// transaction cannot hold it.
				r, err := e.Client.DeleteTarget(ctx, iqn)
				if err != nil {
					return err
				}
				e.left(at, iqn)
				return e.done("ok: deleted target "+iqn, r)
			}},
		{Name: "discovery_auth", Summary: "require CHAP on discovery sessions, or not (nochap)",
			Usage:  "discovery_auth username=<user> password=<secret> [mutual_username=<user> mutual_password=<secret>] | discovery_auth nochap",
			Params: chapParams,
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				chap, err := chapArgs("discovery_auth", a)
				if err != nil {
					return err
				}
				if chap == nil {
					r, err := e.Client.DeleteDiscoveryAuth(ctx)
					if err != nil {
						return err
					}
					return e.done("ok: discovery sessions need no CHAP", r)
				}
				r, err := e.Client.PutDiscoveryAuth(ctx, *chap)
				if err != nil {
					return err
				}
				return e.done("ok: discovery sessions need "+chapWord(chap), r)
			}},
	}
}

// --- /iscsi-targets/<iqn>

func targetCommands() []*Command {
	return []*Command{
		{Name: "auth", Summary: "set the target's CHAP (default for hosts without their own), or remove it (nochap)",
			Usage:  "auth username=<user> password=<secret> [mutual_username=<user> mutual_password=<secret>] | auth nochap",
			Params: chapParams,
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				chap, err := chapArgs("auth", a)
				if err != nil {
					return err
				}
				r, err := updateTarget(ctx, e, at.Target, func(t *model.TargetPut) { t.CHAP = chap })
				if err != nil {
					return err
				}
				return e.done("ok: target "+at.Target+" uses "+chapWord(chap), r)
			}},
	}
}

// updateTarget changes a target's settings with a read-modify-write.
func updateTarget(ctx context.Context, e *Env, iqn string, change func(*model.TargetPut)) (client.Result, error) {
	var r client.Result
	err := retryIfMatch(func() error {
		t, etag, err := e.Client.Target(ctx, iqn)
		if err != nil {
			return err
		}
		put := model.TargetPut{Gateways: t.Gateways, AllowAnyInitiator: t.AllowAnyInitiator, CHAP: t.CHAP}
		change(&put)
		r, err = e.Client.PutTarget(ctx, iqn, put, etag)
		return err
	})
	return r, err
}

// --- /iscsi-targets/<iqn>/gateways

func gatewaysCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "serve the target from a gateway (registering it with its portals if new)",
			Usage: "create <gateway_name> [<ip>[:<port>][,<ip>...]]",
			Params: []Param{pos("gateway_name", VGateway, true, "gateway (host) name"), pos("ip_addresses", VPortals, false, "portal addresses (port 3260 when absent)"),
				kw("nosync", VBool, "accepted for ceph-iscsi compatibility; ignored"), kw("skipchecks", VBool, "accepted for ceph-iscsi compatibility; ignored")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				var portals []string
				if a.Has("ip_addresses") {
					portals, _ = ParsePortals(a["ip_addresses"])
				}
				name := a["gateway_name"]
				r, err := e.Client.PutTargetGateway(ctx, at.Target, name, portals)
				if err != nil {
					return err
				}
				msg := "ok: gateway " + name + " serves " + at.Target
				if len(portals) > 0 {
					msg += " on " + strings.Join(portals, ", ")
				}
				if len(r.Changes) == 0 && !e.Client.DryRun() {
					msg = "ok: gateway " + name + " already serves " + at.Target
				}
				return e.done(msg, r)
			}},
		{Name: "delete", Summary: "stop serving the target from a gateway", Usage: "delete <gateway_name> [confirm=true]",
			Params: []Param{pos("gateway_name", VTargetGateway, true, "gateway to remove"), kw("confirm", VBool, "needed to remove the last gateway of a target that has disks or hosts")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				name := a["gateway_name"]
				t, _, err := e.Client.Target(ctx, at.Target)
				if err != nil {
					return err
				}
				if !contains(t.Gateways, name) {
					return notFound("gateway %s does not serve %s", name, at.Target)
				}
				if len(t.Gateways) == 1 && (len(t.LUNs) > 0 || len(t.Hosts) > 0) && a["confirm"] != "true" {
					return usagef("delete: %s is the last gateway of %s, which has %d disk(s) and %d host(s); nobody could reach them; add confirm=true", name, at.Target, len(t.LUNs), len(t.Hosts))
				}
				r, err := e.Client.DeleteTargetGateway(ctx, at.Target, name)
				if err != nil {
					return err
				}
				return e.done("ok: gateway "+name+" no longer serves "+at.Target, r)
			}},
	}
}

// --- /iscsi-targets/<iqn>/disks

func targetDisksCommands() []*Command {
	del := &Command{Name: "delete", Summary: "unmap a disk from the target", Usage: "delete <pool>/<image>",
		Params: []Param{pos("disk", VTargetDisk, true, "disk to unmap")},
		Run: func(ctx context.Context, e *Env, at Path, a Args) error {
			l, err := lunOf(ctx, e, at.Target, a["disk"])
			if err != nil {
				return err
			}
			r, err := e.Client.DeleteLUN(ctx, at.Target, l.ID)
			if err != nil {
				return err
			}
			return e.done(fmt.Sprintf("ok: unmapped %s (LUN %d) from %s", a["disk"], l.ID, at.Target), r)
		}}
	return []*Command{
		{Name: "add", Summary: "map a disk to the target (lowest free LUN id unless given)", Usage: "add <pool>/<image> [<lun_id>]",
			Params: []Param{pos("disk", VDisk, true, "disk from /disks"), pos("lun_id", VLUN, false, "LUN id (0-255)")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				var want *uint64
				if a.Has("lun_id") {
					id, _ := parseLUN(a["lun_id"])
					want = &id
				}
				r, err := e.Client.MapLUN(ctx, at.Target, a["disk"], want)
				if err != nil {
					return err
				}
				id, ok := lunFromChanges(r)
				if !ok && want != nil {
					id, ok = *want, true
				}
				if !ok && !e.Client.DryRun() {
					if l, err := lunOf(ctx, e, at.Target, a["disk"]); err == nil {
						id, ok = l.ID, true
					}
				}
				msg := "ok: mapped " + a["disk"] + " to " + at.Target
				if ok {
					msg += fmt.Sprintf(" as LUN %d", id)
				}
				if len(r.Changes) == 0 && !e.Client.DryRun() {
					msg = "ok: " + a["disk"] + " was already mapped"
					if ok {
						msg += fmt.Sprintf(" as LUN %d", id)
					}
				}
				return e.done(msg, r)
			}},
		del,
		{Name: "remove", Summary: "same as delete", Usage: del.Usage, Params: del.Params, Run: del.Run},
	}
}

// lunOf finds the LUN mapping a disk in a target.
func lunOf(ctx context.Context, e *Env, iqn, disk string) (model.LUN, error) {
	luns, err := e.Client.LUNs(ctx, iqn)
	if err != nil {
		return model.LUN{}, err
	}
	for _, l := range luns {
		if l.Disk == disk {
			return l, nil
		}
	}
	return model.LUN{}, notFound("disk %s is not mapped to %s", disk, iqn)
}

// lunFromChanges reads the LUN id a map created: the 201's Location
// names it; a dry run has no Location, but its changes hold the key it
// would write ("targets/<iqn>/luns/<id>").
func lunFromChanges(r client.Result) (uint64, bool) {
	if id, ok := client.LUNOf(r); ok {
		return id, true
	}
	for _, c := range r.Changes {
		i := strings.LastIndex(c.Key, "/luns/")
		if c.Op != "put" || i < 0 {
			continue
		}
		if id, err := parseLUN(c.Key[i+len("/luns/"):]); err == nil {
			return id, true
		}
	}
	return 0, false
}

// ensureMapped returns the LUN id of disk in the target, mapping it at
// the lowest free id first when it is not mapped yet (as ceph-iscsi's
// "disk add" on a host does). In a dry run the id is the one the API
// would choose and mapped reports it does not exist yet.
func ensureMapped(ctx context.Context, e *Env, iqn, disk string) (id uint64, res *client.Result, err error) {
	if l, err := lunOf(ctx, e, iqn, disk); err == nil {
		return l.ID, nil, nil
	} else if !client.IsNotFound(err) {
		return 0, nil, err
	}
	r, err := e.Client.MapLUN(ctx, iqn, disk, nil)
	if err != nil {
		return 0, nil, err
	}
	if id, ok := lunFromChanges(r); ok {
		return id, &r, nil
	}
	if e.Client.DryRun() {
		return 0, &r, fmt.Errorf("dry run: cannot tell which LUN id %s would get", disk)
	}
	l, err := lunOf(ctx, e, iqn, disk)
	return l.ID, &r, err
}

// --- /iscsi-targets/<iqn>/hosts

func hostsCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "admit an initiator (it sees no LUN until disk add), then go to it", Usage: "create <client_iqn>",
			Params: []Param{pos("client_iqn", VNewIQN, true, "initiator's iSCSI name")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				ini := canonical(a["client_iqn"])
				r, err := e.Client.CreateHost(ctx, at.Target, ini, model.HostPut{})
				if err != nil {
					return exists(err, "host %s already exists in %s", ini, at.Target)
				}
				if err := e.done("ok: created host "+ini, r); err != nil {
					return err
				}
				if e.Interactive && !e.Client.DryRun() {
					p, _ := at.Child(ini)
					e.prev, e.Cwd = e.Cwd, p
				}
				return nil
			}},
		{Name: "delete", Summary: "remove an initiator", Usage: "delete <client_iqn>",
			Params: []Param{pos("client_iqn", VHostIQN, true, "host to remove")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				ini := canonical(a["client_iqn"])
				r, err := e.Client.DeleteHost(ctx, at.Target, ini)
				if err != nil {
					return err
				}
				e.left(at, ini)
				return e.done("ok: deleted host "+ini, r)
			}},
		{Name: "auth", Summary: "nochap: remove every host's CHAP; enable_acl/disable_acl: admit listed hosts only / any initiator",
			Usage:  "auth nochap | auth enable_acl | auth disable_acl",
			Params: []Param{action("what to change", "nochap", "enable_acl", "disable_acl")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				switch a["action"] {
				case "enable_acl", "disable_acl":
					any := a["action"] == "disable_acl"
					r, err := updateTarget(ctx, e, at.Target, func(t *model.TargetPut) { t.AllowAnyInitiator = any })
					if err != nil {
						return err
					}
					msg := "ok: only the hosts listed may log in to " + at.Target
					if any {
						msg = "ok: any initiator may log in to " + at.Target + " (hosts keep their own settings)"
					}
					return e.done(msg, r)
				}
				hosts, err := e.Client.Hosts(ctx, at.Target)
				if err != nil {
					return err
				}
				var results []client.Result
				for _, h := range hosts {
					if h.CHAP == nil {
						continue
					}
					r, changed, err := updateHost(ctx, e, at.Target, h.Initiator, func(h *model.Host) (bool, error) {
						changed := h.CHAP != nil
						h.CHAP = nil
						return changed, nil
					})
					if err != nil {
						return err
					}
					if changed {
						results = append(results, r)
					}
				}
				return e.done(fmt.Sprintf("ok: removed CHAP from %s", plural(len(results), "host")), results...)
			}},
	}
}

// hostPut is the document that writes h back as it is.
func hostPut(h model.Host) model.HostPut {
	put := model.HostPut{CHAP: h.CHAP, Addresses: h.Addresses}
	if h.Group == "" {
		// A group member's LUNs are its group's, not its own.
		put.LUNs = h.LUNs
	}
	return put
}

// updateHost changes a host with a read-modify-write (If-Match, retried
// when another change won the race). change reports whether it changed
// anything; nothing is written when it did not.
func updateHost(ctx context.Context, e *Env, iqn, ini string, change func(*model.Host) (bool, error)) (client.Result, bool, error) {
	var r client.Result
	var changed bool
	err := retryIfMatch(func() error {
		h, etag, err := e.Client.Host(ctx, iqn, ini)
		if err != nil {
			return err
		}
		if changed, err = change(&h); err != nil || !changed {
			return err
		}
		r, err = e.Client.PutHost(ctx, iqn, ini, hostPut(h), etag)
		return err
	})
	return r, changed, err
}

// --- /iscsi-targets/<iqn>/hosts/<client_iqn>

func hostCommands() []*Command {
	return []*Command{
		{Name: "auth", Summary: "set the host's CHAP, or remove it (nochap)",
			Usage:  "auth username=<user> password=<secret> [mutual_username=<user> mutual_password=<secret>] | auth nochap",
			Params: chapParams,
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				chap, err := chapArgs("auth", a)
				if err != nil {
					return err
				}
				r, _, err := updateHost(ctx, e, at.Target, at.Name, func(h *model.Host) (bool, error) {
					h.CHAP = chap
					return true, nil
				})
				if err != nil {
					return err
				}
				return e.done("ok: host "+at.Name+" uses "+chapWord(chap), r)
			}},
		{Name: "disk", Summary: "let the host see a disk (mapping it to the target first if needed), or not",
			Usage:  "disk add <pool>/<image> | disk remove <pool>/<image>",
			Params: []Param{action("add or remove", "add", "remove"), pos("disk", VHostDisk, true, "disk")},
			Run:    hostDisk},
	}
}

func hostDisk(ctx context.Context, e *Env, at Path, a Args) error {
	disk := a["disk"]
	if a["action"] == "add" {
		h, _, err := e.Client.Host(ctx, at.Target, at.Name)
		if err != nil {
			return err
		}
		if h.Group != "" {
			return conflict(model.CodeInUse, "host %s is in host group %s, which sets its disks; use disk add in /iscsi-targets/%s/host-groups/%s", at.Name, h.Group, at.Target, h.Group)
		}
		id, mapRes, err := ensureMapped(ctx, e, at.Target, disk)
		if err != nil {
			return err
		}
		var results []client.Result
		if mapRes != nil {
			results = append(results, *mapRes)
		}
		if e.Client.DryRun() && mapRes != nil {
			// The LUN does not exist yet, so the host's update cannot be
			// checked by the API.
			return e.done(fmt.Sprintf("mapped %s as LUN %d, then let host %s see it (that step is not checked in a dry run)", disk, id, at.Name), results...)
		}
		r, changed, err := updateHost(ctx, e, at.Target, at.Name, func(h *model.Host) (bool, error) {
			if h.Group != "" {
				return false, conflict(model.CodeInUse, "host %s is in host group %s, which sets its disks", at.Name, h.Group)
			}
			if contains(h.LUNs, id) {
				return false, nil
			}
			h.LUNs = append(h.LUNs, id)
			return true, nil
		})
		if err != nil {
			return err
		}
		if !changed {
			return e.done(fmt.Sprintf("ok: host %s already sees %s (LUN %d)", at.Name, disk, id), results...)
		}
		results = append(results, r)
		return e.done(fmt.Sprintf("ok: host %s sees %s as LUN %d", at.Name, disk, id), results...)
	}
	l, err := lunOf(ctx, e, at.Target, disk)
	if err != nil {
		return err
	}
	r, changed, err := updateHost(ctx, e, at.Target, at.Name, func(h *model.Host) (bool, error) {
		if h.Group != "" {
			return false, conflict(model.CodeInUse, "host %s is in host group %s, which sets its disks; use disk remove there", at.Name, h.Group)
		}
		if !contains(h.LUNs, l.ID) {
			return false, notFound("host %s does not see %s (LUN %d)", at.Name, disk, l.ID)
		}
		h.LUNs = removeID(h.LUNs, l.ID)
		return true, nil
	})
	if err != nil || !changed {
		return err
	}
	return e.done(fmt.Sprintf("ok: host %s no longer sees %s (LUN %d stays mapped to the target)", at.Name, disk, l.ID), r)
}

func removeID(ids []uint64, id uint64) []uint64 {
	out := make([]uint64, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// --- /iscsi-targets/<iqn>/host-groups

func groupsCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "create a host group, then go to it", Usage: "create <group_name>",
			Params: []Param{pos("group_name", VText, true, "group name (letters, digits, '.', '_', '-')")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				name := a["group_name"]
				if err := simpleName(name, "host group name"); err != nil {
					return usagef("create: %v", err)
				}
				r, err := e.Client.CreateHostGroup(ctx, at.Target, name, model.HostGroupPut{})
				if err != nil {
					return exists(err, "host group %s already exists in %s", name, at.Target)
				}
				if err := e.done("ok: created host group "+name, r); err != nil {
					return err
				}
				if e.Interactive && !e.Client.DryRun() {
					p, _ := at.Child(name)
					e.prev, e.Cwd = e.Cwd, p
				}
				return nil
			}},
		{Name: "delete", Summary: "delete a host group (its hosts stay, seeing no LUN)", Usage: "delete <group_name>",
			Params: []Param{pos("group_name", VGroup, true, "group to delete")},
			Run: func(ctx context.Context, e *Env, at Path, a Args) error {
				r, err := e.Client.DeleteHostGroup(ctx, at.Target, a["group_name"])
				if err != nil {
					return err
				}
				e.left(at, a["group_name"])
				return e.done("ok: deleted host group "+a["group_name"], r)
			}},
	}
}

// updateGroup changes a host group with a read-modify-write.
func updateGroup(ctx context.Context, e *Env, iqn, name string, change func(*model.HostGroup) (bool, error)) (client.Result, bool, error) {
	var r client.Result
	var changed bool
	err := retryIfMatch(func() error {
		g, etag, err := e.Client.HostGroup(ctx, iqn, name)
		if err != nil {
			return err
		}
		if changed, err = change(&g); err != nil || !changed {
			return err
		}
		r, err = e.Client.PutHostGroup(ctx, iqn, name, model.HostGroupPut{Members: g.Members, LUNs: g.LUNs}, etag)
		return err
	})
	return r, changed, err
}

// --- /iscsi-targets/<iqn>/host-groups/<group>

func groupCommands() []*Command {
	return []*Command{
		{Name: "host", Summary: "add a host to the group, or remove it (it keeps the group's disks)", Usage: "host add <client_iqn> | host remove <client_iqn>",
			Params: []Param{action("add or remove", "add", "remove"), pos("client_iqn", VHostIQN, true, "host")},
			Run:    groupHost},
		{Name: "disk", Summary: "let the group's hosts see a disk (mapping it to the target first if needed), or not",
			Usage:  "disk add <pool>/<image> | disk remove <pool>/<image>",
			Params: []Param{action("add or remove", "add", "remove"), pos("disk", VGroupDisk, true, "disk")},
			Run:    groupDisk},
	}
}

func groupHost(ctx context.Context, e *Env, at Path, a Args) error {
	ini := canonical(a["client_iqn"])
	if a["action"] == "add" {
		// The API refuses both as invalid (exit 1); read first so that a
		// missing host is not found and one with disks says what to do.
		h, _, err := e.Client.Host(ctx, at.Target, ini)
		if client.IsNotFound(err) {
			return notFound("host %s does not exist in %s (create it in /iscsi-targets/%s/hosts first)", ini, at.Target, at.Target)
		}
		if err != nil {
			return err
		}
		if h.Group != at.Name && len(h.LUNs) > 0 {
			return conflict(model.CodeInUse, "host %s has its own disks (LUNs %s); a member takes the group's: disk remove them in /iscsi-targets/%s/hosts/%s first",
				ini, lunList(h.LUNs), at.Target, ini)
		}
		r, changed, err := updateGroup(ctx, e, at.Target, at.Name, func(g *model.HostGroup) (bool, error) {
			if contains(g.Members, ini) {
				return false, nil
			}
			g.Members = append(g.Members, ini)
			return true, nil
		})
		if err != nil {
			return err
		}
		if !changed {
			return e.done("ok: " + ini + " is already in " + at.Name)
		}
		return e.done("ok: added "+ini+" to host group "+at.Name, r)
	}
	var luns []uint64
	r, changed, err := updateGroup(ctx, e, at.Target, at.Name, func(g *model.HostGroup) (bool, error) {
		if !contains(g.Members, ini) {
			return false, notFound("host %s is not in host group %s", ini, at.Name)
		}
		luns = append([]uint64(nil), g.LUNs...)
		g.Members = removeString(g.Members, ini)
		return true, nil
	})
	if err != nil || !changed {
		return err
	}
	results := []client.Result{r}
	if len(luns) > 0 && !e.Client.DryRun() {
		// As in ceph-iscsi, the host keeps the disks it saw.
		r2, _, err := updateHost(ctx, e, at.Target, ini, func(h *model.Host) (bool, error) {
			h.Group = ""
			h.LUNs = luns
			return true, nil
		})
		if err != nil {
			_ = e.done("ok: removed "+ini+" from host group "+at.Name, results...)
			return fmt.Errorf("host %s left the group but could not keep its disks (it now sees none): %w", ini, err)
		}
		results = append(results, r2)
	}
	return e.done("ok: removed "+ini+" from host group "+at.Name+" (it keeps LUNs "+lunList(luns)+")", results...)
}

func removeString(s []string, v string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func groupDisk(ctx context.Context, e *Env, at Path, a Args) error {
	disk := a["disk"]
	if a["action"] == "add" {
		if _, _, err := e.Client.HostGroup(ctx, at.Target, at.Name); err != nil {
			return err
		}
		id, mapRes, err := ensureMapped(ctx, e, at.Target, disk)
		if err != nil {
			return err
		}
		var results []client.Result
		if mapRes != nil {
			results = append(results, *mapRes)
		}
		if e.Client.DryRun() && mapRes != nil {
			return e.done(fmt.Sprintf("mapped %s as LUN %d, then let host group %s see it (that step is not checked in a dry run)", disk, id, at.Name), results...)
		}
		r, changed, err := updateGroup(ctx, e, at.Target, at.Name, func(g *model.HostGroup) (bool, error) {
			if contains(g.LUNs, id) {
				return false, nil
			}
			g.LUNs = append(g.LUNs, id)
			return true, nil
		})
		if err != nil {
			return err
		}
		if changed {
			results = append(results, r)
		}
		return e.done(fmt.Sprintf("ok: host group %s sees %s as LUN %d", at.Name, disk, id), results...)
	}
	l, err := lunOf(ctx, e, at.Target, disk)
	if err != nil {
		return err
	}
	r, changed, err := updateGroup(ctx, e, at.Target, at.Name, func(g *model.HostGroup) (bool, error) {
		if !contains(g.LUNs, l.ID) {
			return false, notFound("host group %s does not see %s (LUN %d)", at.Name, disk, l.ID)
		}
		g.LUNs = removeID(g.LUNs, l.ID)
		return true, nil
	})
	if err != nil || !changed {
		return err
	}
	return e.done(fmt.Sprintf("ok: host group %s no longer sees %s", at.Name, disk), r)
}
