// Command rbdgw-admin changes and shows the configuration of a gateway
// cluster in etcd: gateways, disks, targets, LUN maps, hosts, host groups
// (LUN masking) and discovery CHAP. It writes through the same validated,
// revision-checked transactions as every other writer, so it is safe to
// run while gateways are running (they apply changes live) or stopped
// (they catch up when they start). It also manages the REST API's tokens and shows its audit
// trail: break-glass access that needs etcd, not an API token.
//
//	rbdgw-admin [-etcd host:port,...] [-etcd-prefix /rbdgw/] [etcd security flags] COMMAND ARGS
//
// Run it without a command for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdflags"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

const usage = `usage: rbdgw-admin [-etcd host:port,...] [-etcd-prefix /rbdgw/] [-timeout 30s]
                   [-etcd-cacert FILE] [-etcd-cert FILE -etcd-key FILE] [-etcd-auth-file FILE] [-etcd-insecure]
                   [-secret-key-file FILE] COMMAND ARGS

commands:
  gateway put NAME -portal IP:PORT [-portal IP:PORT ...] [-tpg ID]
  gateway delete NAME         also its Ceph client record unless it is live or owns a disk; of a
                              gateway no longer configured, the record it left
  disk put POOL/IMAGE -size SIZE [-block-size 512|4096] [-physical-block-size BYTES] [-read-only]
  disk delete POOL/IMAGE
  target put IQN -gateway NAME [-gateway NAME ...] [-allow-any-initiator] [CHAP]
  target delete IQN           with its LUNs, hosts and groups; in parts when they are many
  lun put IQN ID POOL/IMAGE
  lun delete IQN ID
  host put IQN INITIATOR [CHAP] [-lun ID|all|none ...] [-address IP|CIDR|any ...]
  host delete IQN INITIATOR
  hostgroup put IQN NAME [-member INITIATOR ...] [-lun ID|all|none ...]
                              hosts sharing one LUN list (the members are exactly those given)
  hostgroup delete IQN NAME
  discovery-auth put CHAP
  discovery-auth delete
  owner move POOL/IMAGE GATEWAY
                              make a live gateway serving the disk its ALUA owner (rebalance)
  show                        the whole configuration, owners and live gateways (JSON, secrets masked)
  wait [-live NAME ...] [-owned]
                              wait until the gateways are live and every mapped disk has an owner
  token create -name NAME -role viewer|operator|admin [-ttl DURATION] [-o FILE]
                              make an API token; printed once, or written to FILE (mode 0600)
  token list                  the API tokens (never their secrets)
  token revoke ID             revoke an API token at once on every gateway
  audit [-n N] [-json]        the newest N entries of the audit trail of API writes (default 20)
  secret-key create FILE      write a new key for -secret-key-file (32 random bytes, mode 0600; needs no etcd)
  secret-key status           how the CHAP secrets are stored: plain, encrypted by which key, undecryptable
  secret-key migrate [-plain] rewrite every CHAP secret encrypted with the first key of -secret-key-file
                              (-plain: in plain text)

CHAP is -chap-user USER [-chap-secret-file FILE] [-chap-mutual-user USER [-chap-mutual-secret-file FILE]]:
a secret file holds the secret on one line; "-" reads standard input (the secret, then the mutual
secret on the next line); without a file the secret is asked for on the terminal. The old
-chap USER:SECRET[:MUSER:MSECRET] still works, with a warning: ps and the shell history show it.

etcd: https:// endpoints (the default with -etcd-cacert or -etcd-cert) check the server against
-etcd-cacert and present -etcd-cert/-etcd-key; the user and password come from -etcd-auth-file
("user:password" or two lines) or RBDGW_ETCD_USER and RBDGW_ETCD_PASSWORD. Plain http:// is refused
off loopback unless -etcd-insecure.

LUN masking: a host sees exactly the LUNs it lists, or its host group lists when it is a member
(a member's own list must be empty). -lun is repeatable: -lun 0 -lun 3 lists two LUNs, -lun all
every LUN the target has now (LUNs mapped later are not added), -lun none no LUN. Without -lun an
existing host or group keeps its list and a new one sees no LUN. Initiators without a host entry,
admitted by target put -allow-any-initiator, see every LUN. A LUN a host or group lists cannot be
deleted. The first command that writes migrates a cluster of an older schema.

Initiator addresses: host put -address binds a host to the source addresses it may log in from
(repeatable, IPv4 or IPv6 addresses and CIDRs, at most 64; -address any removes the binding). A
login from another address is refused and discovery does not show it the target; its sessions
from an address no longer listed are asked to log out. Without -address an existing host keeps
its list and a new one may log in from any address. Every gateway must run a build that enforces
addresses before any is set (an older gateway ignores them).

SIZE takes a K, M, G or T suffix (powers of 1024). CHAP secrets are 12 to 16 characters.
`

func main() {
	os.Exit(report(run(os.Args[1:], os.Stdout), os.Stdout, os.Stderr))
}

// report prints how a command ended and returns the exit code. A mistake
// is one line that points at -h: the whole usage after it would push the
// line itself off the screen. -h prints the usage (exit 0), and so does a
// command line without a command (exit 2).
func report(err error, out, errOut io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(out, usage)
		return 0
	case errors.Is(err, errNoCommand):
		fmt.Fprint(errOut, usage)
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(errOut, "rbdgw-admin: %v (rbdgw-admin -h shows the usage)\n", err)
		return 2
	}
	fmt.Fprintln(errOut, "rbdgw-admin:", err)
	return 1
}

var (
	errUsage     = errors.New("bad usage")
	errNoCommand = errors.New("no command")
)

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rbdgw-admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	endpoints := fs.String("etcd", "127.0.0.1:2379", "comma-separated etcd endpoints")
	prefix := fs.String("etcd-prefix", cluster.DefaultPrefix, "key prefix of the cluster")
	timeout := fs.Duration("timeout", 30*time.Second, "how long a command may take")
	var sec etcdflags.Flags
	sec.Register(fs, "")
	if err := fs.Parse(args); err != nil {
		return usagef("%w", err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: %w", errUsage, errNoCommand)
	}
	if fs.NArg() >= 2 && fs.Arg(0) == "secret-key" && fs.Arg(1) == "create" {
		return secretKeyCreate(fs.Args()[2:], out) // no etcd needed
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cfg, err := sec.ClientConfig(*endpoints)
	if err != nil {
		return err
	}
	key, err := sec.SecretKey()
	if err != nil {
		return fmt.Errorf("-secret-key-file: %w", err)
	}
	cli, err := cluster.Dial(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	quiet := slog.New(slog.DiscardHandler)
	store, err := cluster.New(cli, cluster.Options{Prefix: *prefix, SecretKey: key})
	if err != nil {
		return err
	}
	a := &admin{store: store, out: out,
		tokens:   tokens.New(cli, *prefix),
		audit:    audit.New(cli, *prefix, audit.Options{Logger: quiet}),
		errOut:   os.Stderr,
		in:       os.Stdin,
		prompt:   terminalPrompt(),
		cli:      cli,
		quietLog: quiet}
	return a.dispatch(ctx, fs.Args())
}
