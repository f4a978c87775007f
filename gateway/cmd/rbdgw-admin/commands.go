package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

// admin runs one command against the store.
type admin struct {
	store  *cluster.Store
	tokens *tokens.Store
	audit  *audit.Log
	out    io.Writer

	// For CHAP secrets (secrets.go): warnings go to errOut; secrets come
	// from files, from in ("-"), or from prompt (nil when standard input
	// is not a terminal).
	errOut io.Writer
	in     io.Reader
	stdin  *bufio.Reader
	prompt func(what string) (string, error)
	// cli and quietLog make the store of secret-key migrate -plain.
	cli      *clientv3.Client
	quietLog *slog.Logger
}

func (a *admin) dispatch(ctx context.Context, args []string) error {
	cmd := args[0]
	if len(args) > 1 && (args[1] == "put" || args[1] == "delete") {
		cmd += " " + args[1]
		args = args[2:]
	} else {
		args = args[1:]
	}
	if strings.HasSuffix(cmd, " put") || strings.HasSuffix(cmd, " delete") || cmd == "owner" {
		// A command that writes the configuration opens the cluster to
		// write: records of an older schema are migrated first.
		if err := a.migrate(ctx); err != nil {
			return err
		}
	}
	switch cmd {
	case "gateway put":
		return a.gatewayPut(ctx, args)
	case "gateway delete":
		return a.gatewayDelete(ctx, args)
	case "disk put":
		return a.diskPut(ctx, args)
	case "disk delete":
		return a.deleteOne(ctx, args, 1, func(p []string) cluster.Op { return cluster.DeleteDisk(p[0]) })
	case "target put":
		return a.targetPut(ctx, args)
	case "target delete":
		return a.targetDelete(ctx, args)
	case "lun put":
		return a.lunPut(ctx, args)
	case "lun delete":
		if len(args) != 2 {
			return usagef("lun delete IQN ID")
		}
		id, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			return usagef("LUN id %q", args[1])
		}
		return a.commit(ctx, cluster.DeleteLUN(cluster.CanonicalISCSIName(args[0]), id))
	case "host put":
		return a.hostPut(ctx, args)
	case "host delete":
		return a.deleteOne(ctx, args, 2, func(p []string) cluster.Op {
			return cluster.DeleteHost(cluster.CanonicalISCSIName(p[0]), cluster.CanonicalISCSIName(p[1]))
		})
	case "hostgroup put":
		return a.hostGroupPut(ctx, args)
	case "hostgroup delete":
		return a.deleteOne(ctx, args, 2, func(p []string) cluster.Op {
			return cluster.DeleteHostGroup(cluster.CanonicalISCSIName(p[0]), p[1])
		})
	case "discovery-auth put":
		return a.discoveryAuthPut(ctx, args)
	case "discovery-auth delete":
		return a.commit(ctx, cluster.DeleteDiscoveryAuth())
	case "owner":
		if len(args) != 3 || args[0] != "move" {
			return usagef("owner move POOL/IMAGE GATEWAY")
		}
		return a.ownerMove(ctx, args[1], args[2])
	case "token":
		return a.token(ctx, args)
	case "secret-key":
		return a.secretKey(ctx, args)
	case "audit":
		return a.auditList(ctx, args)
	case "show":
		return a.show(ctx)
	case "wait":
		return a.wait(ctx, args)
	}
	return usagef("unknown command %q", cmd)
}

// commit applies ops in one transaction and reports the revision.
func (a *admin) commit(ctx context.Context, ops ...cluster.Op) error {
	return a.update(ctx, func(*cluster.Snapshot) ([]cluster.Op, error) { return ops, nil })
}

// update commits the ops fn builds from the current state (read again on a
// conflict) and reports the revision.
func (a *admin) update(ctx context.Context, fn func(*cluster.Snapshot) ([]cluster.Op, error)) error {
	rev, err := a.store.Update(ctx, fn)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "ok (revision %d)\n", rev)
	return nil
}

// migrate brings the cluster's records up to this build's schema, and says
// so when it did.
func (a *admin) migrate(ctx context.Context) error {
	from, err := a.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if from != 0 && from < cluster.SchemaVersion {
		fmt.Fprintf(a.errOut, "rbdgw-admin: cluster schema migrated from %d to %d\n", from, cluster.SchemaVersion)
	}
	return nil
}

func (a *admin) deleteOne(ctx context.Context, args []string, n int, op func([]string) cluster.Op) error {
	if len(args) != n {
		return usagef("expected %d argument(s), got %d", n, len(args))
	}
	return a.commit(ctx, op(args))
}

// gatewayDelete deletes a gateway, with its Ceph client record when
// nobody can need it to fence the gateway (cluster.ClientRecordKept). Of a
// gateway no longer configured it deletes the record left behind, once
// that holds.
func (a *admin) gatewayDelete(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usagef("gateway delete NAME")
	}
	name := args[0]
	var kept string
	configured := true
	rev, err := a.store.Update(ctx, func(s *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := s.Gateways[name]; !ok && s.ModRev(cluster.GatewayKey(name)) == 0 {
			configured = false
			return nil, nil
		}
		kept = cluster.ClientRecordKept(s, name)
		return []cluster.Op{cluster.DeleteGateway(name)}, nil
	})
	if err != nil {
		return err
	}
	if !configured {
		kept, err := a.store.ForgetClient(ctx, name)
		switch {
		case errors.Is(err, cluster.ErrNotFound):
			return fmt.Errorf("gateway %s: %w", name, cluster.ErrNotFound)
		case err != nil:
			return err
		case kept != "":
			return fmt.Errorf("gateway %s is not configured; its Ceph client record stays: %s", name, kept)
		}
		fmt.Fprintf(a.out, "ok (Ceph client record of %s deleted)\n", name)
		return nil
	}
	fmt.Fprintf(a.out, "ok (revision %d)\n", rev)
	if kept != "" {
		fmt.Fprintf(a.out, "Ceph client record %s kept: %s; run gateway delete %s again once it is stopped and owns no disk\n",
			cluster.ClientKey(name), kept, name)
	}
	return nil
}

// targetDelete deletes a target with its LUN maps, hosts and host groups,
// in parts when they do not fit one etcd transaction (cluster.Store.NextPart),
// each part revision-checked against a fresh snapshot. Every part leaves a
// valid target with fewer children, so a delete stopped half-way is
// finished by running it again.
func (a *admin) targetDelete(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usagef("target delete IQN")
	}
	iqn := cluster.CanonicalISCSIName(args[0])
	var parts, keys int
	var last int64 // revision of the last part committed
	for {
		var final bool
		var n int
		rev, err := a.store.Update(ctx, func(s *cluster.Snapshot) ([]cluster.Op, error) {
			part, l, err := a.store.NextPart(s, cluster.DeleteTarget(iqn))
			if err != nil {
				return nil, err
			}
			changes, err := cluster.Preview(s, part...)
			if err != nil {
				return nil, err
			}
			final, n = l, len(changes)
			return part, nil
		})
		if err != nil {
			if parts > 0 {
				return fmt.Errorf("%w (target %s was being deleted in parts: %d part(s), %d keys, were committed, up to revision %d, each leaving a valid target with fewer children; run target delete %s again to finish)",
					err, iqn, parts, keys, last, iqn)
			}
			return err
		}
		parts++
		keys += n
		last = rev
		if final {
			if parts == 1 {
				fmt.Fprintf(a.out, "ok (revision %d)\n", rev)
			} else {
				fmt.Fprintf(a.out, "ok (revision %d, %d parts, %d keys)\n", rev, parts, keys)
			}
			return nil
		}
		fmt.Fprintf(a.out, "part %d: %d keys deleted (revision %d)\n", parts, n, rev)
	}
}

func (a *admin) gatewayPut(ctx context.Context, args []string) error {
	fs := newFlags("gateway put")
	var portals stringList
	fs.Var(&portals, "portal", "IP:PORT the gateway listens on (repeatable)")
	tpg := fs.Uint("tpg", 0, "target port group id (0: keep or allocate)")
	pos, err := parseInterleaved(fs, args, 1)
	if err != nil {
		return err
	}
	if *tpg > 65535 {
		return usagef("-tpg %d is above 65535", *tpg)
	}
	return a.commit(ctx, cluster.PutGateway(cluster.Gateway{Name: pos[0], Portals: portals, TPGID: uint16(*tpg)}))
}

func (a *admin) diskPut(ctx context.Context, args []string) error {
	fs := newFlags("disk put")
	size := fs.String("size", "", "size with K, M, G or T suffix")
	bs := fs.Uint("block-size", 0, "logical block size, 512 (default) or 4096")
	pbs := fs.Uint("physical-block-size", 0, "physical block size reported to initiators (default 4096, or the block size when larger)")
	ro := fs.Bool("read-only", false, "refuse writes")
	pos, err := parseInterleaved(fs, args, 1)
	if err != nil {
		return err
	}
	pool, image, ok := cluster.SplitDiskID(pos[0])
	if !ok {
		return usagef("disk %q: want POOL/IMAGE", pos[0])
	}
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	if *pbs > 1<<31 {
		return usagef("-physical-block-size %d is too large", *pbs)
	}
	return a.commit(ctx, cluster.PutDisk(cluster.Disk{Pool: pool, Image: image, Size: n, BlockSize: uint32(*bs),
		PhysicalBlockSize: uint32(*pbs), ReadOnly: *ro}))
}

func (a *admin) targetPut(ctx context.Context, args []string) error {
	fs := newFlags("target put")
	var gateways stringList
	fs.Var(&gateways, "gateway", "gateway serving the target (repeatable)")
	anyone := fs.Bool("allow-any-initiator", false, "admit initiators without a host entry")
	var chap chapFlags // for initiators without their own
	chap.register(fs, true)
	pos, err := parseInterleaved(fs, args, 1)
	if err != nil {
		return err
	}
	t := cluster.Target{IQN: cluster.CanonicalISCSIName(pos[0]), Gateways: gateways, AllowAnyInitiator: *anyone}
	if t.CHAP, err = chap.resolve(a); err != nil {
		return err
	}
	return a.commit(ctx, cluster.PutTarget(t))
}

func (a *admin) lunPut(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return usagef("lun put IQN ID POOL/IMAGE")
	}
	id, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return usagef("LUN id %q", args[1])
	}
	return a.commit(ctx, cluster.PutLUN(cluster.LUN{Target: cluster.CanonicalISCSIName(args[0]), ID: id, Disk: args[2]}))
}

func (a *admin) hostPut(ctx context.Context, args []string) error {
	fs := newFlags("host put")
	var chap chapFlags // of this initiator
	chap.register(fs, true)
	var luns lunFlag
	fs.Var(&luns, "lun", "LUN id the host sees (repeatable), all (every LUN the target has now) or none")
	var addrs addressFlag
	fs.Var(&addrs, "address", "IP address or CIDR the host may log in from (repeatable), or any")
	pos, err := parseInterleaved(fs, args, 2)
	if err != nil {
		return err
	}
	h := cluster.Host{Target: cluster.CanonicalISCSIName(pos[0]), Initiator: cluster.CanonicalISCSIName(pos[1])}
	if h.CHAP, err = chap.resolve(a); err != nil {
		return err
	}
	return a.update(ctx, func(s *cluster.Snapshot) ([]cluster.Op, error) {
		h := h
		h.LUNs = luns.resolve(s, h.Target, s.Hosts[h.Target][h.Initiator].LUNs)
		h.Addresses = addrs.resolve(s.Hosts[h.Target][h.Initiator].Addresses)
		return []cluster.Op{cluster.PutHost(h)}, nil
	})
}

func (a *admin) hostGroupPut(ctx context.Context, args []string) error {
	fs := newFlags("hostgroup put")
	var members stringList
	fs.Var(&members, "member", "initiator name of a host of the target (repeatable; the group's members are exactly those given)")
	var luns lunFlag
	fs.Var(&luns, "lun", "LUN id the members see (repeatable), all (every LUN the target has now) or none")
	pos, err := parseInterleaved(fs, args, 2)
	if err != nil {
		return err
	}
	g := cluster.HostGroup{Target: cluster.CanonicalISCSIName(pos[0]), Name: pos[1]}
	for _, m := range members {
		g.Members = append(g.Members, cluster.CanonicalISCSIName(m))
	}
	return a.update(ctx, func(s *cluster.Snapshot) ([]cluster.Op, error) {
		g := g
		g.LUNs = luns.resolve(s, g.Target, s.HostGroups[g.Target][g.Name].LUNs)
		return []cluster.Op{cluster.PutHostGroup(g)}, nil
	})
}

// lunFlag is -lun: a host's or group's LUN list, explicit. Each use adds a
// LUN id; "all" stands for every LUN the target has when the command runs
// (LUNs mapped later are not added), "none" for the empty list. Not given
// at all, an existing entry keeps its list and a new one sees no LUN.
type lunFlag struct {
	set, all, none bool
	ids            []uint64
}

func (f *lunFlag) String() string { return "" }

func (f *lunFlag) Set(v string) error {
	f.set = true
	switch v {
	case "all":
		f.all = true
	case "none":
		f.none = true
	default:
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q: want a LUN id, all or none", v)
		}
		f.ids = append(f.ids, id)
	}
	if f.none && (f.all || len(f.ids) > 0) {
		return fmt.Errorf("none excludes other LUNs")
	}
	return nil
}

// resolve is the list to store: the ids given, every LUN of target iqn
// for all, none, or cur when -lun was not given.
func (f *lunFlag) resolve(s *cluster.Snapshot, iqn string, cur []uint64) []uint64 {
	switch {
	case !f.set:
		return slices.Clone(cur)
	case f.none:
		return []uint64{}
	}
	ids := slices.Clone(f.ids)
	if f.all {
		for _, l := range s.TargetLUNs(iqn) {
			ids = append(ids, l.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ownerMove makes gateway the ALUA owner of disk (to rebalance, or to
// prefer a gateway). Both gateways stay live: the exclusive lock follows
// the initiators' writes, which move to the new optimized path after the
// unit attention every gateway establishes.
func (a *admin) ownerMove(ctx context.Context, disk, gateway string) error {
	s, _, err := a.store.Load(ctx)
	if err != nil {
		return err
	}
	l, ok := s.DiskMapping(disk)
	if !ok {
		return fmt.Errorf("disk %s is not mapped by any target", disk)
	}
	if !slices.Contains(s.Targets[l.Target].Gateways, gateway) {
		return fmt.Errorf("gateway %s does not serve target %s", gateway, l.Target)
	}
	if _, live := s.Live[gateway]; !live {
		return fmt.Errorf("gateway %s is not live: the disk would move on at once", gateway)
	}
	cur := s.Owners[disk]
	if cur.Gateway == gateway {
		fmt.Fprintf(a.out, "ok (%s already owns %s)\n", gateway, disk)
		return nil
	}
	o, err := a.store.ClaimOwner(ctx, disk, gateway, cur.Epoch)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "ok (%s owns %s, epoch %d)\n", o.Gateway, disk, o.Epoch)
	return nil
}

// show prints the configuration as JSON with CHAP secrets masked.
func (a *admin) show(ctx context.Context) error {
	s, _, err := a.store.Load(ctx)
	if err != nil {
		return err
	}
	return a.print(describe(s))
}

// print writes v as indented JSON.
func (a *admin) print(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// wait polls until the named gateways are live and, with -owned, every
// mapped disk has an owner.
func (a *admin) wait(ctx context.Context, args []string) error {
	fs := newFlags("wait")
	var live stringList
	fs.Var(&live, "live", "gateway that must be live (repeatable)")
	owned := fs.Bool("owned", false, "every mapped disk must have an owner")
	if _, err := parseInterleaved(fs, args, 0); err != nil {
		return err
	}
	for {
		s, _, err := a.store.Load(ctx)
		if err == nil {
			missing := waitingFor(s, live, *owned)
			if missing == "" {
				fmt.Fprintln(a.out, "ok")
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("still waiting for %s: %w", missing, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitingFor names what wait is still waiting for, "" when nothing.
func waitingFor(s *cluster.Snapshot, live []string, owned bool) string {
	for _, g := range live {
		if _, ok := s.Live[g]; !ok {
			return "gateway " + g
		}
	}
	if owned {
		for _, iqn := range s.TargetIQNs() {
			for _, l := range s.TargetLUNs(iqn) {
				if _, ok := s.Owners[l.Disk]; !ok {
					return "an owner of " + l.Disk
				}
			}
		}
	}
	return ""
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseInterleaved parses flags that may come before, between or after
// exactly want positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %w", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, usagef("%s: expected %d argument(s), got %d", fs.Name(), want, len(pos))
	}
	return pos, nil
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseSize reads "1073741824", "512M", "1G", "2T".
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, usagef("-size is required")
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, usagef("size %q", s)
	}
	return n * mult, nil
}

// parseCHAP reads USER:SECRET[:MUSER:MSECRET]; the store validates the
// values (without echoing secrets).
func parseCHAP(s string) (*config.CHAP, error) {
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 2:
		return &config.CHAP{User: parts[0], Secret: parts[1]}, nil
	case 4:
		return &config.CHAP{User: parts[0], Secret: parts[1], MutualUser: parts[2], MutualSecret: parts[3]}, nil
	}
	return nil, usagef("CHAP credentials: want USER:SECRET or USER:SECRET:MUTUAL_USER:MUTUAL_SECRET")
}
