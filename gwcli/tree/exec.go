// Package tree is gwcli's configuration tree: the nodes of ceph-iscsi's
// gwcli (/cluster, /disks, /iscsi-targets/<iqn>/{gateways,disks,hosts,
// host-groups}), path resolution, the commands of every node with their
// arguments, and how their results are printed. It talks to the API
// through gwcli/client only; the interactive shell (gwcli/shell) and batch
// mode (gwcli/cmd/gwcli) both run commands through Env.
package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rbdgw/rbdgw/gwcli/client"
)

// Exit codes of gwcli.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitConflict = 3 // HTTP 409 or 412
	ExitNotFound = 4 // HTTP 404
)

// ExitCode maps an error to gwcli's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var u *UsageError
	var p *PathError
	var a *client.APIError
	switch {
	case errors.As(err, &u), errors.As(err, &p):
		return ExitUsage
	case errors.As(err, &a):
		switch a.Status {
		case http.StatusNotFound:
			return ExitNotFound
		case http.StatusConflict, http.StatusPreconditionFailed:
			return ExitConflict
		}
	}
	return ExitError
}

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Env runs commands: the API client, where output goes, and the current
// node. One Env serves a whole interactive session or script.
type Env struct {
	Client *client.Client
	Cache  *Cache
	Out    io.Writer
	Err    io.Writer
	// Format is table, json or yaml.
	Format string
	// Width of tree listings (80 when 0).
	Width int
	// Cwd is the current node. Interactive is set for a session (the
	// shell, a script): create then cd's into what it made, as ceph-iscsi
	// does, and a bare path goes there instead of listing it.
	Cwd         Path
	Interactive bool

	prev Path
	// Exit is set by the exit command.
	Exit bool
}

// NewEnv returns an Env at the root.
func NewEnv(c *client.Client, out, errOut io.Writer) *Env {
	return &Env{Client: c, Cache: NewCache(c), Out: out, Err: errOut, Format: FormatTable, Cwd: Root, prev: Root}
}

// Line runs one command line.
func (e *Env) Line(ctx context.Context, line string) error {
	words, err := Split(line)
	if err != nil {
		return err
	}
	return e.Run(ctx, words)
}

// Run runs one command given as words: "[path] command [args]", or a bare
// path (cd in the shell, ls in batch mode).
func (e *Env) Run(ctx context.Context, words []string) error {
	if len(words) == 0 {
		return nil
	}
	at := e.Cwd
	if c := lookup(at.Kind, words[0]); c != nil {
		return e.runCommand(ctx, c, at, words[1:])
	}
	p, err := Resolve(e.Cwd, words[0])
	if err != nil {
		if looksLikePath(words[0]) {
			return err
		}
		return unknownCommand(words[0], at, "here")
	}
	if !looksLikePath(words[0]) {
		// A bare child name stands for a path only when it names
		// something that exists; else it is most likely a mistyped
		// command ("creat foo" is not command foo of a child "creat").
		if err := e.exists(ctx, p); err != nil {
			if client.IsNotFound(err) {
				return unknownCommand(words[0], at, "here")
			}
			return err
		}
	}
	if len(words) == 1 {
		if e.Interactive {
			return e.cd(ctx, p)
		}
		return e.ls(ctx, p, 0)
	}
	c := lookup(p.Kind, words[1])
	if c == nil {
		return unknownCommand(words[1], p, "there")
	}
	return e.runCommand(ctx, c, p, words[2:])
}

// unknownCommand is the error for a word that is neither a command at at
// nor an existing child of it, with the closest command's name as a hint.
// where says whether at is the current node ("here") or a path typed
// before the word ("there").
func unknownCommand(word string, at Path, where string) error {
	names := commandNames(at.Kind)
	guess := ""
	if c := closest(word, names); c != "" {
		guess = fmt.Sprintf(" (did you mean %q?)", c)
	}
	help := " (help lists them)"
	if where != "here" {
		help = ""
	}
	return usagef("unknown command %q at %s%s; commands %s: %s%s%s", word, at, guess, where, strings.Join(names, ", "), help, elsewhere(word))
}

// closest returns the name nearest to word when it is a plausible typo
// of it (at most two edits, and fewer than half the word), else "".
func closest(word string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(word, n); d < bestD && 2*d < len(n) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// elsewhere names the nodes where an unknown command exists, as a hint
// ("create iqn..." typed at / as in many ceph-iscsi guides).
func elsewhere(name string) string {
	var where []string
	for _, n := range []struct {
		k    Kind
		path string
	}{{KDisks, "/disks"}, {KTargets, "/iscsi-targets"}, {KTGateways, "/iscsi-targets/<iqn>/gateways"},
		{KTDisks, "/iscsi-targets/<iqn>/disks"}, {KHosts, "/iscsi-targets/<iqn>/hosts"}, {KHost, "/iscsi-targets/<iqn>/hosts/<client_iqn>"},
		{KGroups, "/iscsi-targets/<iqn>/host-groups"}, {KDisk, "/disks/<pool>/<image>"}} {
		for _, c := range byKind[n.k] {
			if c.Name == name {
				where = append(where, n.path)
			}
		}
	}
	if len(where) == 0 {
		return ""
	}
	return "; " + name + " is a command of " + strings.Join(where, ", ")
}

func looksLikePath(w string) bool {
	return strings.HasPrefix(w, "/") || strings.HasPrefix(w, ".") || strings.Contains(w, "/")
}

func (e *Env) runCommand(ctx context.Context, c *Command, at Path, words []string) error {
	if c.Rewrite != nil {
		words = c.Rewrite(words)
	}
	a, err := Parse(c.Name, c.Params, words)
	if err != nil {
		if u, ok := err.(*UsageError); ok && c.Usage != "" {
			u.Msg += "; usage: " + c.Usage
		}
		return err
	}
	return c.Run(ctx, e, at, a)
}

// --- output

// emit prints an API document in the json or yaml format.
func (e *Env) emit(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if e.Format == FormatYAML {
		return writeYAML(e.Out, b)
	}
	_, err = fmt.Fprintf(e.Out, "%s\n", b)
	return err
}

func (e *Env) structured() bool { return e.Format == FormatJSON || e.Format == FormatYAML }

// writeYAML renders a JSON document as YAML, keeping the order of the
// fields and the JSON field names.
func writeYAML(w io.Writer, js []byte) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	n, err := yamlNode(dec)
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return err
	}
	return enc.Close()
}

func yamlNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := yamlNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)}, v)
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for dec.More() {
				v, err := yamlNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			_, err := dec.Token()
			return n, err
		}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// done reports the results of a command's writes: their documents in
// json/yaml (one object, or an array for several writes), else msg, the
// keys a dry run would change, and which gateways applied the change.
func (e *Env) done(msg string, results ...client.Result) error {
	e.Cache.Invalidate()
	for _, r := range results {
		if r.Pending() && r.Applied != nil {
			fmt.Fprintf(e.Err, "warning: committed at revision %d but not applied yet on %s%s\n", r.Revision,
				joinOr(r.Applied.Pending, "-"), downNote(r.Applied.Down))
		}
	}
	if e.structured() {
		switch len(results) {
		case 0:
			return nil
		case 1:
			return e.emit(results[0].WriteResult)
		}
		docs := make([]any, len(results))
		for i, r := range results {
			docs[i] = r.WriteResult
		}
		return e.emit(docs)
	}
	if e.Client.DryRun() {
		fmt.Fprintf(e.Out, "dry run, nothing changed; it would have: %s\n", strings.TrimPrefix(msg, "ok: "))
		n := 0
		for _, r := range results {
			for _, c := range r.Changes {
				fmt.Fprintf(e.Out, "  would %s %s\n", c.Op, c.Key)
				n++
			}
		}
		if n == 0 && len(results) > 0 {
			fmt.Fprintln(e.Out, "  (no key would change)")
		}
		return nil
	}
	line := msg
	var applied, down []string
	pending := false
	for _, r := range results {
		if r.Applied == nil {
			continue
		}
		pending = pending || r.Pending()
		for _, g := range r.Applied.Gateways {
			if !contains(applied, g) {
				applied = append(applied, g)
			}
		}
		for _, g := range r.Applied.Down {
			if !contains(down, g) {
				down = append(down, g)
			}
		}
	}
	sort.Strings(applied)
	sort.Strings(down)
	var notes []string
	if len(applied) > 0 {
		notes = append(notes, "applied on "+strings.Join(applied, ", "))
	}
	if len(down) > 0 && !pending {
		// (A pending write's warning names them already.)
		verb := "apply"
		if len(down) == 1 {
			verb = "applies"
		}
		notes = append(notes, "down: "+strings.Join(down, ", ")+", which "+verb+" it when up")
	}
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	fmt.Fprintln(e.Out, line)
	return nil
}

func downNote(down []string) string {
	if len(down) == 0 {
		return ""
	}
	return "; down (will apply it when back): " + strings.Join(down, ", ")
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// notFound and conflict are errors gwcli detects from what the API
// returned, with the exit codes the API's would have.
func notFound(format string, args ...any) error {
	return &client.APIError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

func conflict(code, format string, args ...any) error {
	return &client.APIError{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

// exists turns the answer to a create-only write of something that is
// there already (412, or 409 when a concurrent create won) into gwcli's
// message; other errors pass.
func exists(err error, format string, args ...any) error {
	if client.IsExists(err) {
		return conflict("exists", format, args...)
	}
	return err
}
