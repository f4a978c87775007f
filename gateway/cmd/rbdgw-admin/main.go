// Command rbdgw-admin changes and shows the configuration of a gateway
// cluster in etcd: gateways, disks, targets, LUN maps, hosts and discovery
// CHAP. It writes through the same validated, revision-checked
// transactions as every other writer, so it is safe to run while gateways
// are running (they apply changes live) or stopped (they catch up when
// they start). It also manages the REST API's tokens and shows its audit
// trail: break-glass access that needs etcd, not an API token.
//
//	rbdgw-admin [-etcd host:port,...] [-etcd-prefix /rbdgw/] COMMAND ARGS
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
	"strings"
	"time"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

const usage = `usage: rbdgw-admin [-etcd host:port,...] [-etcd-prefix /rbdgw/] [-timeout 30s] COMMAND ARGS

commands:
  gateway put NAME -portal IP:PORT [-portal IP:PORT ...] [-tpg ID]
  gateway delete NAME
  disk put POOL/IMAGE -size SIZE [-block-size 512|4096] [-physical-block-size BYTES] [-read-only]
  disk delete POOL/IMAGE
  target put IQN -gateway NAME [-gateway NAME ...] [-allow-any-initiator] [-chap USER:SECRET[:MUSER:MSECRET]]
  target delete IQN
  lun put IQN ID POOL/IMAGE
  lun delete IQN ID
  host put IQN INITIATOR [-chap USER:SECRET[:MUSER:MSECRET]] [-lun ID ...]
  host delete IQN INITIATOR
  discovery-auth put USER:SECRET[:MUSER:MSECRET]
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

SIZE takes a K, M, G or T suffix (powers of 1024). CHAP secrets are 12 to 16 characters.
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rbdgw-admin:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bad usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rbdgw-admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	endpoints := fs.String("etcd", "127.0.0.1:2379", "comma-separated etcd endpoints")
	prefix := fs.String("etcd-prefix", cluster.DefaultPrefix, "key prefix of the cluster")
	timeout := fs.Duration("timeout", 30*time.Second, "how long a command may take")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() == 0 {
		return usagef("no command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var eps []string
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			if !strings.Contains(e, "://") {
				e = "http://" + e
			}
			eps = append(eps, e)
		}
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: eps})
	if err != nil {
		return err
	}
	defer cli.Close()
	store, err := cluster.New(cli, cluster.Options{Prefix: *prefix})
	if err != nil {
		return err
	}
	a := &admin{store: store, out: out,
		tokens: tokens.New(cli, *prefix),
		audit:  audit.New(cli, *prefix, audit.Options{Logger: slog.New(slog.DiscardHandler)})}
	return a.dispatch(ctx, fs.Args())
}
