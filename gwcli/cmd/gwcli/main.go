// Command gwcli is the shell storage admins manage the gateway cluster
// with: ceph-iscsi's gwcli tree and commands over the REST API.
//
//	gwcli                         interactive shell (completion, history)
//	gwcli <path> <command> [args] one command (batch mode)
//	gwcli -f script               one command per line; stops at the first error
//
// It reads the API's URL and token from --url/--token, RBDGW_API_URL and
// RBDGW_API_TOKEN, or ~/.config/rbdgw/gwcli.yaml (url:, token:), in that
// order. Exit codes: 0 ok, 1 error, 2 usage, 3 conflict (HTTP 409/412),
// 4 not found (404).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
	"github.com/rbdgw/rbdgw/gwcli/shell"
	"github.com/rbdgw/rbdgw/gwcli/tree"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are gwcli's flags.
type options struct {
	url, token, config, output, file string
	dryRun, wait                     bool
	waitTimeout, timeout             time.Duration
	help                             bool
	count                            int
}

const usageText = `usage: gwcli [flags]                          interactive shell
       gwcli [flags] [<path>] <command> [args]  run one command
       gwcli [flags] -f <script>|-             run a script (one command per line)

Examples:
  gwcli ls /
  gwcli /disks create pool=rbd image=disk_1 size=90G
  gwcli /iscsi-targets/iqn.2003-01.com.example:t1/hosts/iqn.1994-05.com.redhat:c1 disk add rbd/disk_1
  gwcli -o json /disks info rbd/disk_1
  gwcli top -n 1 -o json
  gwcli events count=1 timeout=30s

Flags (anywhere on the line; -- ends them):`

func parseFlags(args []string, stderr io.Writer) (options, []string, error) {
	var o options
	fs := flag.NewFlagSet("gwcli", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.url, "url", "", "API URL, e.g. http://127.0.0.1:5000 (RBDGW_API_URL)")
	fs.StringVar(&o.token, "token", "", "API bearer token (RBDGW_API_TOKEN)")
	fs.StringVar(&o.config, "config", "", "config file (default ~/.config/rbdgw/gwcli.yaml)")
	fs.StringVar(&o.output, "o", "table", "output: table, json or yaml")
	fs.StringVar(&o.output, "output", "table", "same as -o")
	fs.StringVar(&o.file, "f", "", "run the commands of a script file (- for stdin)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "validate writes and print what would change, changing nothing")
	fs.BoolVar(&o.wait, "wait", false, "writes return once every live gateway concerned applied them")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 0, "how long --wait waits (API default 30s)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each API request")
	fs.IntVar(&o.count, "n", 0, "top: print N snapshots and stop; events: stop after N events (count=N)")
	fs.BoolVar(&o.help, "h", false, "show this help")
	fs.BoolVar(&o.help, "help", false, "show this help")
	// Errors are one line; the whole usage only with -h.
	fs.Usage = func() {}
	usage := func() {
		fmt.Fprintln(stderr, usageText)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	var words []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return o, nil, fmt.Errorf("%v (gwcli -h shows the flags)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		// A flag terminator ends flag parsing for good.
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			words = append(words, rest...)
			break
		}
		words = append(words, rest[0])
		rest = rest[1:]
	}
	if o.help {
		usage()
		return o, nil, flag.ErrHelp
	}
	if o.waitTimeout != 0 {
		switch {
		case !o.wait:
			return o, nil, fmt.Errorf("--wait-timeout goes with --wait")
		case o.waitTimeout < 0 || o.waitTimeout > model.MaxWaitTimeout:
			return o, nil, fmt.Errorf("--wait-timeout %s: expected a duration up to %s", o.waitTimeout, model.MaxWaitTimeout)
		}
	}
	if o.count < 0 {
		return o, nil, fmt.Errorf("-n %d: expected a positive count", o.count)
	}
	if o.count > 0 && len(words) == 0 {
		return o, nil, fmt.Errorf("-n goes with top or events (gwcli top -n 1)")
	}
	if o.count > 0 {
		// top and events take it as count=N.
		words = append(words, fmt.Sprintf("count=%d", o.count))
	}
	switch o.output {
	case tree.FormatTable, tree.FormatJSON, tree.FormatYAML:
	default:
		return o, nil, fmt.Errorf("-o %q: expected table, json or yaml", o.output)
	}
	return o, words, nil
}

// fileConfig is ~/.config/rbdgw/gwcli.yaml.
type fileConfig struct {
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
}

func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "rbdgw", "gwcli.yaml")
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// loadConfig reads the config file; a missing default file is no error.
func loadConfig(path string, explicit bool, stderr io.Writer) (fileConfig, error) {
	var c fileConfig
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return c, nil
		}
		return c, fmt.Errorf("config file: %v", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// yaml's own text is a line per problem and names Go types.
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = unknownField.ReplaceAllString(m, "unknown key $1 (the keys are url and token)")
			}
			return c, fmt.Errorf("config file %s: %s", path, strings.Join(msgs, "; "))
		}
		return c, fmt.Errorf("config file %s: %v", path, err)
	}
	if c.Token != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(stderr, "warning: %s holds a token and is readable by others (chmod 600 it)\n", path)
		}
	}
	return c, nil
}

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	o, words, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return tree.ExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "error: "+err.Error())
		return tree.ExitUsage
	}
	cfgPath, explicit := o.config, o.config != ""
	if !explicit {
		cfgPath = defaultConfigPath()
	}
	cfg, err := loadConfig(cfgPath, explicit, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error: "+err.Error())
		return tree.ExitUsage
	}
	url := first(o.url, os.Getenv("RBDGW_API_URL"), cfg.URL)
	token := first(o.token, os.Getenv("RBDGW_API_TOKEN"), cfg.Token)
	c, err := client.New(client.Options{URL: url, Token: token, Timeout: o.timeout, DryRun: o.dryRun,
		Wait: o.wait, WaitTimeout: o.waitTimeout, UserAgent: "gwcli"})
	if err != nil {
		fmt.Fprintln(stderr, "error: "+err.Error())
		return tree.ExitUsage
	}
	env := tree.NewEnv(c, stdout, stderr)
	env.Format = o.output
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
		env.Width = w
	}
	ctx := context.Background()

	switch {
	case o.file != "":
		if len(words) > 0 {
			fmt.Fprintln(stderr, "error: -f runs a script; give no command with it")
			return tree.ExitUsage
		}
		r, name := io.Reader(stdin), "stdin"
		if o.file != "-" {
			f, err := os.Open(o.file)
			if err != nil {
				fmt.Fprintln(stderr, "error: "+err.Error())
				return tree.ExitUsage
			}
			defer f.Close()
			r, name = f, o.file
		}
		return report(env.RunScript(ctx, r, name), stderr)
	case len(words) > 0:
		return report(env.Run(ctx, words), stderr)
	case !term.IsTerminal(int(stdin.Fd())):
		return report(env.RunScript(ctx, stdin, "stdin"), stderr)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return report(err, stderr)
	}
	banner := fmt.Sprintf("gwcli: %s (gateway %s, %s). help lists commands, Tab completes, exit or Ctrl-D leaves.",
		c.URL(), info.Gateway, orUnknown(info.Version))
	if o.dryRun {
		banner += "\nDry run: writes are validated and shown, nothing changes."
	}
	hist := ""
	if p := defaultConfigPath(); p != "" {
		hist = filepath.Join(filepath.Dir(p), "gwcli_history")
	}
	if err := shell.Run(ctx, env, shell.Options{HistoryFile: hist, Banner: banner}); err != nil {
		return report(err, stderr)
	}
	return tree.ExitOK
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// report prints err on one line and returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return tree.ExitOK
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	var se *tree.ScriptError
	if errors.As(err, &se) {
		msg = fmt.Sprintf("%s:%d: error: %s", se.Name, se.Line, strings.Join(strings.Fields(se.Err.Error()), " "))
	} else {
		msg = "error: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return tree.ExitCode(err)
}

func first(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
