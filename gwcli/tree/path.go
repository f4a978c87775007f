package tree

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// Kind is the type of a node of the configuration tree.
type Kind int

// The node kinds, as ceph-iscsi's gwcli arranges them.
const (
	KRoot      Kind = iota // /
	KCluster               // /cluster
	KPools                 // /cluster/pools
	KPool                  // /cluster/pools/<pool>
	KDisks                 // /disks
	KDiskPool              // /disks/<pool>
	KDisk                  // /disks/<pool>/<image>
	KTargets               // /iscsi-targets
	KTarget                // /iscsi-targets/<iqn>
	KTGateways             // …/<iqn>/gateways
	KTGateway              // …/<iqn>/gateways/<name>
	KTDisks                // …/<iqn>/disks
	KTDisk                 // …/<iqn>/disks/<pool>/<image>
	KHosts                 // …/<iqn>/hosts
	KHost                  // …/<iqn>/hosts/<initiator>
	KHostLUN               // …/<iqn>/hosts/<initiator>/lun<id>
	KGroups                // …/<iqn>/host-groups
	KGroup                 // …/<iqn>/host-groups/<group>
	KGroupHost             // …/<iqn>/host-groups/<group>/<initiator>
	KGroupDisk             // …/<iqn>/host-groups/<group>/<pool>/<image>
)

var kindNames = map[Kind]string{
	KRoot: "root", KCluster: "cluster", KPools: "pools", KPool: "pool", KDisks: "disks", KDiskPool: "disk pool",
	KDisk: "disk", KTargets: "targets", KTarget: "target", KTGateways: "target gateways", KTGateway: "target gateway",
	KTDisks: "target disks", KTDisk: "target disk", KHosts: "hosts", KHost: "host", KHostLUN: "host LUN",
	KGroups: "host groups", KGroup: "host group", KGroupHost: "group host", KGroupDisk: "group disk",
}

func (k Kind) String() string { return kindNames[k] }

// Path is a node of the tree: the names from the root (a name may hold a
// slash: "rbd/disk_1" under a target's disks) and what they mean.
type Path struct {
	Elems []string
	Kind  Kind
	// Fields named by the path, by kind.
	Pool, Image string // KPool, KDiskPool, KDisk, KTDisk, KGroupDisk (Image empty for pools)
	Target      string // every node under /iscsi-targets/<iqn>
	Name        string // gateway, host initiator, group
	Member      string // KGroupHost: the initiator
	LUN         uint64 // KHostLUN
}

// Root is "/".
var Root = Path{Kind: KRoot}

// String is the absolute path.
func (p Path) String() string { return "/" + strings.Join(p.Elems, "/") }

// Disk is "pool/image" of a disk-like node.
func (p Path) Disk() string { return p.Pool + "/" + p.Image }

// Parent is the path one level up.
func (p Path) Parent() Path {
	if len(p.Elems) == 0 {
		return p
	}
	q, err := walk(p.Elems[:len(p.Elems)-1])
	if err != nil {
		return Root
	}
	return q
}

// Child is the path of a child by name.
func (p Path) Child(name string) (Path, error) {
	elems := append(append([]string(nil), p.Elems...), name)
	return walk(elems)
}

// PathError is a path that cannot name a node: a usage error.
type PathError struct {
	Path, Reason string
}

func (e *PathError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("no such path: %s", e.Path)
	}
	return fmt.Sprintf("no such path %s: %s", e.Path, e.Reason)
}

// Resolve reads p (absolute, relative to cwd, with "." and "..") into a
// node. It checks the shape of the path and the syntax of the names in
// it, not that the entities exist (that needs the API).
func Resolve(cwd Path, p string) (Path, error) {
	p = strings.TrimSpace(p)
	elems := append([]string(nil), cwd.Elems...)
	if strings.HasPrefix(p, "/") {
		elems = nil
	}
	segs := strings.Split(p, "/")
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		switch s {
		case "", ".":
			continue
		case "..":
			if len(elems) > 0 {
				elems = elems[:len(elems)-1]
			}
			continue
		}
		parent, err := walk(elems)
		if err != nil {
			return Path{}, err
		}
		if twoPart(parent.Kind, s) {
			// "<pool>/<image>" is one name here.
			j := i + 1
			for j < len(segs) && segs[j] == "" {
				j++
			}
			if j >= len(segs) || segs[j] == "." || segs[j] == ".." {
				return Path{}, &PathError{Path: join(elems, s), Reason: "a disk is named <pool>/<image>; the image is missing"}
			}
			s += "/" + segs[j]
			i = j
		}
		elems = append(elems, s)
		if _, err := walk(elems); err != nil {
			return Path{}, err
		}
	}
	return walk(elems)
}

// twoPart reports whether a child name under a node of kind k is
// "<pool>/<image>" spread over two segments, s being the first.
func twoPart(k Kind, s string) bool {
	switch k {
	case KTDisks:
		return !strings.Contains(s, "/")
	case KGroup:
		return !strings.Contains(s, "/") && !isISCSIName(s)
	}
	return false
}

func isISCSIName(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "iqn.") || strings.HasPrefix(l, "eui.") || strings.HasPrefix(l, "naa.")
}

func join(elems []string, more ...string) string {
	return "/" + strings.Join(append(append([]string(nil), elems...), more...), "/")
}

// walk interprets the names from the root.
func walk(elems []string) (Path, error) {
	p := Path{Kind: KRoot}
	for i, e := range elems {
		bad := func(reason string) (Path, error) {
			return Path{}, &PathError{Path: join(elems[:i+1]), Reason: reason}
		}
		switch p.Kind {
		case KRoot:
			switch e {
			case "cluster":
				p.Kind = KCluster
			case "disks":
				p.Kind = KDisks
			case "iscsi-targets", "iscsi-target":
				// "iscsi-target" is the older spelling ceph-iscsi's man page
				// and many guides still use.
				e = "iscsi-targets"
				p.Kind = KTargets
			default:
				if !isISCSIName(e) {
					return bad("/ has cluster, disks and iscsi-targets")
				}
				// A target's name at the root stands for the target, as
				// guides that "create <iqn>" at / then "cd <iqn>/gateways"
				// expect: /<iqn> is /iscsi-targets/<iqn>.
				iqn := config.CanonicalName(e)
				if err := config.ValidateName(iqn); err != nil {
					return bad(err.Error())
				}
				p.Kind, p.Target = KTarget, iqn
				p.Elems = append(p.Elems, "iscsi-targets", iqn)
				continue
			}
		case KCluster:
			if e != "pools" {
				return bad("/cluster has pools")
			}
			p.Kind = KPools
		case KPools:
			if err := simpleName(e, "pool name"); err != nil {
				return bad(err.Error())
			}
			p.Kind, p.Pool = KPool, e
		case KDisks:
			if pool, image, ok := strings.Cut(e, "/"); ok {
				// Tolerate "rbd/disk_1" given as one element.
				if err := diskID(e); err != nil {
					return bad(err.Error())
				}
				p.Kind, p.Pool, p.Image = KDisk, pool, image
				p.Elems = append(p.Elems, pool, image)
				continue
			}
			if err := simpleName(e, "pool name"); err != nil {
				return bad(err.Error())
			}
			p.Kind, p.Pool = KDiskPool, e
		case KDiskPool:
			if err := simpleName(e, "image name"); err != nil {
				return bad(err.Error())
			}
			p.Kind, p.Image = KDisk, e
		case KTargets:
			iqn := config.CanonicalName(e)
			if err := config.ValidateName(iqn); err != nil {
				return bad(err.Error())
			}
			e = iqn
			p.Kind, p.Target = KTarget, iqn
		case KTarget:
			switch e {
			case "gateways":
				p.Kind = KTGateways
			case "disks":
				p.Kind = KTDisks
			case "hosts":
				p.Kind = KHosts
			case "host-groups":
				p.Kind = KGroups
			default:
				return bad("a target has gateways, disks, hosts and host-groups")
			}
		case KTGateways:
			if err := simpleName(e, "gateway name"); err != nil {
				return bad(err.Error())
			}
			p.Kind, p.Name = KTGateway, e
		case KTDisks:
			if err := diskID(e); err != nil {
				return bad(err.Error())
			}
			pool, image, _ := strings.Cut(e, "/")
			p.Kind, p.Pool, p.Image = KTDisk, pool, image
		case KHosts:
			ini := config.CanonicalName(e)
			if err := config.ValidateName(ini); err != nil {
				return bad(err.Error())
			}
			e = ini
			p.Kind, p.Name = KHost, ini
		case KHost:
			id, ok := strings.CutPrefix(e, "lun")
			n, err := strconv.ParseUint(id, 10, 64)
			if !ok || err != nil || n > MaxLUNID {
				return bad("a host's children are its LUNs: lun0, lun1, ...")
			}
			p.Kind, p.LUN = KHostLUN, n
		case KGroups:
			if err := simpleName(e, "host group name"); err != nil {
				return bad(err.Error())
			}
			p.Kind, p.Name = KGroup, e
		case KGroup:
			if isISCSIName(e) {
				ini := config.CanonicalName(e)
				if err := config.ValidateName(ini); err != nil {
					return bad(err.Error())
				}
				e = ini
				p.Kind, p.Member = KGroupHost, ini
				p.Elems = append(p.Elems, ini)
				continue
			}
			if err := diskID(e); err != nil {
				return bad("a host group's children are its hosts (iSCSI names) and disks (<pool>/<image>)")
			}
			pool, image, _ := strings.Cut(e, "/")
			p.Kind, p.Pool, p.Image = KGroupDisk, pool, image
		default:
			return bad(fmt.Sprintf("%s has no children", join(elems[:i])))
		}
		p.Elems = append(p.Elems, e)
	}
	return p, nil
}

// MaxLUNID is the highest LUN id the API accepts.
const MaxLUNID = 255

// simpleName checks a pool, image, gateway or group name: letters, digits,
// '.', '_' and '-', starting with a letter or digit (the API's rule).
func simpleName(s, what string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > 255 {
		return fmt.Errorf("%s %q is longer than 255 bytes", what, s)
	}
	if !isAlnum(s[0]) {
		return fmt.Errorf("%s %q must start with a letter or digit", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%s %q contains %q; only letters, digits, '.', '_' and '-' are allowed", what, s, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// diskID checks "<pool>/<image>".
func diskID(s string) error {
	pool, image, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(image, "/") {
		return fmt.Errorf("disk %q must be <pool>/<image>", s)
	}
	if err := simpleName(pool, "pool name"); err != nil {
		return err
	}
	return simpleName(image, "image name")
}
