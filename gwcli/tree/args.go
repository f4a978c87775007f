package tree

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// UsageError is a command the shell refuses before asking the API: an
// unknown path or command, a missing or malformed argument. Exit code 2.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// Split cuts a command line into words: spaces separate words, single and
// double quotes group, a backslash escapes the next character, and an
// unquoted word starting with '#' starts a comment.
func Split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			return words, nil
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, usagef("unterminated %c quote", quote)
	}
	if escaped {
		cur.WriteRune('\\')
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ValueKind says what a parameter holds: how it is checked and completed.
type ValueKind int

// Value kinds.
const (
	VText              ValueKind = iota
	VSize                        // 90G
	VCount                       // 1..
	VLUN                         // 0..255
	VDepth                       // ls depth
	VPath                        // a tree path
	VEnum                        // one of Param.Enum
	VBool                        // true/false
	VPool                        // a Ceph pool
	VImage                       // an image of the pool= given (completion only)
	VDisk                        // <pool>/<image> configured disk
	VNewDisk                     // <pool>/<image>, for create (completion: pools)
	VImportDisk                  // <pool>/<image> of an image not yet a disk
	VTargetIQN                   // an existing target
	VNewIQN                      // a new iSCSI name
	VGateway                     // a gateway name
	VTargetGateway               // a gateway serving this target
	VPortals                     // ip[:port][,ip[:port]...]
	VHostIQN                     // a host of this target
	VGroupHost                   // a member of this group
	VGroupDisk                   // a disk of this group
	VHostDisk                    // a disk this host sees
	VTargetDisk                  // a disk mapped to this target
	VSnapshot                    // a snapshot of this disk
	VGroup                       // a host group of this target
	VCommand                     // a command name (help)
	VSecret                      // a CHAP secret (never completed)
	VUser                        // a CHAP user name
	VPhysicalBlockSize           // bytes, a power of two
)

// Param is one parameter of a command.
type Param struct {
	Name string
	// Keyword: accepted as name=value. Positional: accepted bare, in the
	// order of the positional parameters.
	Keyword, Positional bool
	Required            bool
	Kind                ValueKind
	Enum                []string
	Desc                string
}

// Args are a command's parsed arguments by parameter name.
type Args map[string]string

// Has reports whether a parameter was given.
func (a Args) Has(name string) bool { _, ok := a[name]; return ok }

// Parse maps words to params: "key=value" for keyword parameters (the key
// must be one of them), bare words to the positional parameters in order.
// It checks what can be checked without the API: required parameters,
// sizes, numbers, names, enumerations.
func Parse(cmd string, params []Param, words []string) (Args, error) {
	a := Args{}
	var bare []string
	byName := map[string]*Param{}
	for i := range params {
		byName[params[i].Name] = &params[i]
	}
	for _, w := range words {
		k, v, hasEq := strings.Cut(w, "=")
		if hasEq {
			if p, ok := byName[k]; ok && p.Keyword {
				if a.Has(k) {
					return nil, usagef("%s: %s given twice", cmd, k)
				}
				a[k] = v
				continue
			}
			if next := nextPositional(params, a, len(bare)); next == nil || !acceptsEquals(next.Kind) {
				return nil, usagef("%s: unknown parameter %q%s", cmd, k, keywordList(params))
			}
		}
		bare = append(bare, w)
	}
	pos := 0
	for _, w := range bare {
		for pos < len(params) && (!params[pos].Positional || a.Has(params[pos].Name)) {
			pos++
		}
		if pos >= len(params) {
			return nil, usagef("%s: too many arguments (%q is one too many)", cmd, w)
		}
		a[params[pos].Name] = w
		pos++
	}
	for _, p := range params {
		v, ok := a[p.Name]
		if !ok {
			if p.Required {
				return nil, usagef("%s: missing %s", cmd, p.Name)
			}
			continue
		}
		if err := checkValue(p, v); err != nil {
			return nil, usagef("%s: %s", cmd, err)
		}
	}
	return a, nil
}

// nextPositional is the positional parameter the next bare word fills.
func nextPositional(params []Param, a Args, nbare int) *Param {
	n := 0
	for i := range params {
		p := &params[i]
		if !p.Positional || a.Has(p.Name) {
			continue
		}
		if n == nbare {
			return p
		}
		n++
	}
	return nil
}

// acceptsEquals: values that may hold '=' (secrets, user names).
func acceptsEquals(k ValueKind) bool { return k == VSecret || k == VText }

func keywordList(params []Param) string {
	var names []string
	for _, p := range params {
		if p.Keyword {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return "; it takes no key=value parameters"
	}
	sort.Strings(names)
	return "; expected " + strings.Join(names, ", ")
}

// checkValue validates one argument by its kind.
func checkValue(p Param, v string) error {
	switch p.Kind {
	case VSize:
		n, err := model.ParseSize(v)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("size %q must be larger than 0", v)
		}
	case VCount:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return fmt.Errorf("%s %q: expected a whole number from 1 to 256", p.Name, v)
		}
	case VLUN:
		if _, err := parseLUN(v); err != nil {
			return err
		}
	case VDepth:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("depth %q: expected a whole number (0: everything)", v)
		}
	case VEnum:
		for _, e := range p.Enum {
			if v == e {
				return nil
			}
		}
		return fmt.Errorf("%s %q: expected %s", p.Name, v, strings.Join(p.Enum, ", "))
	case VBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%s %q: expected true or false", p.Name, v)
		}
	case VPool:
		return simpleName(v, "pool name")
	case VImage:
		return simpleName(v, "image name")
	case VDisk, VImportDisk, VTargetDisk, VHostDisk, VGroupDisk:
		return diskID(v)
	case VNewIQN, VTargetIQN, VHostIQN, VGroupHost:
		return config.ValidateName(config.CanonicalName(v))
	case VGateway, VTargetGateway:
		return simpleName(v, "gateway name")
	case VGroup:
		return simpleName(v, "host group name")
	case VPortals:
		_, err := ParsePortals(v)
		return err
	case VPhysicalBlockSize:
		_, err := parsePhysicalBlockSize(v)
		return err
	}
	return nil
}

// parsePhysicalBlockSize reads a physical block size in bytes: a power of
// two from 512 bytes to 128 MiB (the API checks it against the block
// size).
func parsePhysicalBlockSize(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 512 || n > 4096*maxBlocksPerPhysical || n&(n-1) != 0 {
		return 0, fmt.Errorf("physical_block_size %q: expected a power of two in bytes, e.g. 4096", v)
	}
	return uint32(n), nil
}

// DefaultISCSIPort is added to portals given without a port.
const DefaultISCSIPort = 3260

// ParsePortals reads "ip[:port][,ip[:port]...]" into canonical "ip:port"
// portals (IPv6 as "[addr]:port").
func ParsePortals(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var ap netip.AddrPort
		if a, err := netip.ParseAddr(strings.Trim(part, "[]")); err == nil {
			ap = netip.AddrPortFrom(a, DefaultISCSIPort)
		} else if ap, err = netip.ParseAddrPort(part); err != nil {
			return nil, fmt.Errorf("portal %q: expected an IP address with an optional port, e.g. 10.0.0.1 or 10.0.0.1:3260 or [fd00::1]:3260", part)
		}
		if ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" {
			return nil, fmt.Errorf("portal %q: the address must be one of the gateway's own addresses", part)
		}
		if ap.Port() == 0 {
			return nil, fmt.Errorf("portal %q: port must be 1-65535", part)
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no portal address given")
	}
	return out, nil
}

func parseLUN(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > MaxLUNID {
		return 0, fmt.Errorf("LUN id %q: expected a whole number from 0 to %d", v, MaxLUNID)
	}
	return n, nil
}
