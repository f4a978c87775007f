package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// CHAP credentials on the command line: the user names are flags, the
// secrets come from files, standard input or a prompt, never from an
// argument (which every user of the machine sees in ps, and the shell
// keeps in its history).

// chapFlags are the CHAP options of target put, host put and
// discovery-auth put.
type chapFlags struct {
	legacy           string // -chap USER:SECRET[:MUSER:MSECRET], deprecated
	user, secretFile string
	mutualUser       string
	mutualSecretFile string
}

func (c *chapFlags) register(fs *flag.FlagSet, legacy bool) {
	if legacy {
		fs.StringVar(&c.legacy, "chap", "", "deprecated: USER:SECRET[:MUSER:MSECRET] (the secret shows in ps and shell history)")
	}
	fs.StringVar(&c.user, "chap-user", "", "CHAP user name")
	fs.StringVar(&c.secretFile, "chap-secret-file", "", "file holding the CHAP secret on one line (\"-\": standard input); prompted for when omitted")
	fs.StringVar(&c.mutualUser, "chap-mutual-user", "", "mutual CHAP: the target's user name")
	fs.StringVar(&c.mutualSecretFile, "chap-mutual-secret-file", "", "file holding the mutual CHAP secret (\"-\": standard input, the line after the secret's); prompted for when omitted")
}

// resolve returns the credentials given, nil when none were. A secret
// given with -chap is accepted with a warning.
func (c *chapFlags) resolve(a *admin) (*config.CHAP, error) {
	if c.legacy != "" {
		if c.user != "" || c.secretFile != "" || c.mutualUser != "" || c.mutualSecretFile != "" {
			return nil, usagef("-chap and -chap-user exclude each other")
		}
		a.warnSecretArgument("-chap")
		return parseCHAP(c.legacy)
	}
	if c.user == "" {
		if c.secretFile != "" || c.mutualUser != "" || c.mutualSecretFile != "" {
			return nil, usagef("-chap-secret-file and -chap-mutual-* need -chap-user")
		}
		return nil, nil
	}
	if c.mutualSecretFile != "" && c.mutualUser == "" {
		return nil, usagef("-chap-mutual-secret-file needs -chap-mutual-user")
	}
	chap := &config.CHAP{User: c.user, MutualUser: c.mutualUser}
	var err error
	if chap.Secret, err = a.readSecret(c.secretFile, "CHAP secret of "+c.user); err != nil {
		return nil, err
	}
	if c.mutualUser != "" {
		if chap.MutualSecret, err = a.readSecret(c.mutualSecretFile, "mutual CHAP secret of "+c.mutualUser); err != nil {
			return nil, err
		}
	}
	return chap, nil
}

// warnSecretArgument tells that a secret was given on the command line.
func (a *admin) warnSecretArgument(how string) {
	fmt.Fprintf(a.errOut, "rbdgw-admin: warning: %s puts the CHAP secret on the command line, where ps and the shell history show it; use -chap-user with -chap-secret-file (or a prompt)\n", how)
}

// readSecret reads one secret: from file, from standard input ("-"), or
// at a prompt on the terminal. Errors never contain the secret.
func (a *admin) readSecret(file, what string) (string, error) {
	switch file {
	case "":
		if a.prompt == nil {
			return "", usagef("%s: standard input is not a terminal; give -chap-secret-file FILE (or - to read standard input)", what)
		}
		return a.prompt(what)
	case "-":
		line, err := a.stdinLine()
		if err != nil {
			return "", fmt.Errorf("%s from standard input: %w", what, err)
		}
		return line, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: %s must hold the secret on one line", what, file)
	}
	return s, nil
}

// stdinLine reads the next line of standard input.
func (a *admin) stdinLine() (string, error) {
	if a.stdin == nil {
		a.stdin = bufio.NewReader(a.in)
	}
	line, err := a.stdin.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no line left")
		}
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("empty line")
	}
	return line, nil
}

// terminalPrompt asks for a secret twice on the terminal without echo;
// nil when standard input is not a terminal.
func terminalPrompt() func(string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	read := func(label string) (string, error) {
		fmt.Fprint(os.Stderr, label)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	return func(what string) (string, error) {
		s, err := read(what + ": ")
		if err != nil {
			return "", err
		}
		again, err := read(what + " (again): ")
		if err != nil {
			return "", err
		}
		if s != again {
			return "", errors.New(what + ": the two entries differ")
		}
		return s, nil
	}
}

// discoveryAuthPut sets discovery CHAP from the CHAP flags or, deprecated,
// from USER:SECRET[:MUSER:MSECRET] as an argument.
func (a *admin) discoveryAuthPut(ctx context.Context, args []string) error {
	fs := newFlags("discovery-auth put")
	var cf chapFlags
	cf.register(fs, false)
	pos, err := parseAny(fs, args)
	if err != nil {
		return err
	}
	var c *config.CHAP
	switch {
	case len(pos) == 1 && cf.user == "" && cf.secretFile == "" && cf.mutualUser == "" && cf.mutualSecretFile == "":
		a.warnSecretArgument("USER:SECRET as an argument")
		if c, err = parseCHAP(pos[0]); err != nil {
			return err
		}
	case len(pos) == 0 && cf.user != "":
		if c, err = cf.resolve(a); err != nil {
			return err
		}
	default:
		return usagef("discovery-auth put -chap-user USER [-chap-secret-file FILE] [-chap-mutual-user USER [-chap-mutual-secret-file FILE]]")
	}
	return a.commit(ctx, cluster.PutDiscoveryAuth(*c))
}

// parseAny parses flags that may come before, between or after any number
// of positional arguments.
func parseAny(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %w", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// The key that encrypts CHAP secrets in etcd (docs/adr/0004).

// secretKeyCreate writes a new key file; it needs no etcd.
func secretKeyCreate(args []string, out io.Writer) error {
	if len(args) != 1 {
		return usagef("secret-key create FILE")
	}
	k, err := cluster.CreateSecretKeyFile(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ok (key %s written to %s, mode 0600; give it to every gateway and rbdgw-admin of the cluster with -secret-key-file, and keep a copy: secrets encrypted with it are lost without it)\n", k.ID(), args[0])
	return nil
}

// secretStatus is what secret-key status prints.
type secretStatus struct {
	// Key is the key this rbdgw-admin encrypts with, Keys every key it
	// holds; empty without -secret-key-file.
	Key  string   `json:"key,omitempty"`
	Keys []string `json:"keys,omitempty"`
	// Plain counts the records with CHAP secrets in plain text, Encrypted
	// those encrypted, by key id.
	Plain     int            `json:"plain"`
	Encrypted map[string]int `json:"encrypted"`
	// Undecryptable lists the records this rbdgw-admin cannot decrypt, with
	// the reason.
	Undecryptable map[string]string `json:"undecryptable,omitempty"`
}

func (a *admin) secretKey(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("secret-key create FILE | status | migrate [-plain]")
	}
	switch args[0] {
	case "status":
		if len(args) != 1 {
			return usagef("secret-key status")
		}
		s, _, err := a.store.Load(ctx)
		if err != nil {
			return err
		}
		return a.print(a.secretStatus(s))
	case "migrate":
		return a.secretKeyMigrate(ctx, args[1:])
	case "create":
		return secretKeyCreate(args[1:], a.out)
	}
	return usagef("unknown secret-key command %q", args[0])
}

func (a *admin) secretStatus(s *cluster.Snapshot) secretStatus {
	st := secretStatus{}
	if k := a.store.SecretKey(); k != nil {
		st.Key, st.Keys = k.ID(), k.IDs()
	}
	st.Plain, st.Encrypted = s.SecretStorage()
	for k, why := range s.Damaged {
		if strings.Contains(why, cluster.ErrSecretKey.Error()) {
			if st.Undecryptable == nil {
				st.Undecryptable = map[string]string{}
			}
			st.Undecryptable[string(k)] = why
		}
	}
	return st
}

// secretKeyMigrate rewrites every record with CHAP secrets that is not
// stored the wanted way: encrypted with this rbdgw-admin's first key, or
// in plain text with -plain. Each record is its own change, made only if
// the record did not change meanwhile.
func (a *admin) secretKeyMigrate(ctx context.Context, args []string) error {
	fs := newFlags("secret-key migrate")
	plain := fs.Bool("plain", false, "store the secrets in plain text (turn encryption off); needs the key to read them")
	if _, err := parseInterleaved(fs, args, 0); err != nil {
		return err
	}
	key := a.store.SecretKey()
	store := a.store
	switch {
	case *plain:
		var err error
		if store, err = cluster.New(a.cli, cluster.Options{Prefix: a.store.Prefix(), SecretKey: key, WritePlainSecrets: true,
			Logger: a.quietLog}); err != nil {
			return err
		}
	case key == nil:
		return usagef("secret-key migrate encrypts with the key of -secret-key-file: give it (or -plain to store the secrets in plain text)")
	}
	s, _, err := store.Load(ctx)
	if err != nil {
		return err
	}
	want := ""
	if !*plain {
		want = key.ID()
	}
	var ops []cluster.Op
	var keys []cluster.Key
	add := func(k cluster.Key, chap *config.CHAP, op cluster.Op) {
		if _, bad := s.Damaged[k]; bad {
			return // undecryptable: reported below, never rewritten
		}
		if chap != nil && s.SealedBy(k) != want {
			ops = append(ops, op.IfModRev(s.ModRev(k)))
			keys = append(keys, k)
		}
	}
	if s.DiscoveryAuth != nil {
		add(cluster.DiscoveryAuthKey, s.DiscoveryAuth, cluster.PutDiscoveryAuth(*s.DiscoveryAuth))
	}
	for _, iqn := range s.TargetIQNs() {
		t := s.Targets[iqn]
		add(cluster.TargetKey(iqn), t.CHAP, cluster.PutTarget(t))
		for _, h := range s.TargetHosts(iqn) {
			add(cluster.HostKey(iqn, h.Initiator), h.CHAP, cluster.PutHost(h))
		}
	}
	for i, op := range ops {
		if _, err := store.Apply(ctx, op); err != nil {
			return fmt.Errorf("%s: %w (%d of %d records rewritten; run the command again)", keys[i], err, i, len(ops))
		}
	}
	st := a.secretStatus(s)
	how := "encrypted with key " + want
	if *plain {
		how = "in plain text"
	}
	fmt.Fprintf(a.out, "ok (%d records rewritten, %s)\n", len(ops), how)
	if len(st.Undecryptable) > 0 {
		bad := slices.Sorted(maps.Keys(st.Undecryptable))
		return fmt.Errorf("%d records cannot be decrypted with this key file and were left as they are: %s (secret-key status tells why)",
			len(bad), strings.Join(bad, ", "))
	}
	return nil
}
