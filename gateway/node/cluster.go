package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
)

// GatewayStatus is one gateway of the cluster as etcd knows it.
type GatewayStatus struct {
	Name string `json:"name"`
	// Configured: the gateway has a record in the configuration. A live
	// gateway whose record was deleted is listed with Configured false.
	Configured bool `json:"configured"`
	// Live: the gateway holds its liveness lease.
	Live bool `json:"live"`
	// Published is what the gateway last published; nil when it is down
	// or has not published a status yet.
	Published *Published `json:"published,omitempty"`
}

// ReadCluster lists every gateway of the cluster under prefix (configured
// or live), by name, with what each published, all read at one etcd
// revision, which it returns. A gateway that is down is reported as down,
// never as an error; an error means etcd could not be read.
func ReadCluster(ctx context.Context, cli *clientv3.Client, prefix string) ([]GatewayStatus, int64, error) {
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quietLog})
	if err != nil {
		return nil, 0, err
	}
	for attempt := 0; ; attempt++ {
		snap, rev, err := store.Load(ctx)
		if err != nil {
			return nil, 0, err
		}
		resp, err := cli.Get(ctx, peer.Prefix(store.Prefix()), clientv3.WithPrefix(), clientv3.WithRev(rev))
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < 3 {
			continue // compacted right after the load: read again
		}
		if err != nil {
			return nil, 0, fmt.Errorf("node: read status records: %w", err)
		}
		recs := decodeRecords(store.Prefix(), resp.Kvs)
		names := map[string]bool{}
		for name := range snap.Gateways {
			names[name] = true
		}
		for name := range snap.Live {
			names[name] = true
		}
		out := make([]GatewayStatus, 0, len(names))
		for _, name := range slices.Sorted(maps.Keys(names)) {
			_, configured := snap.Gateways[name]
			_, live := snap.Live[name]
			g := GatewayStatus{Name: name, Configured: configured, Live: live}
			if p, ok := recs[name]; ok && live {
				g.Published = p
			}
			out = append(out, g)
		}
		return out, rev, nil
	}
}

// WaitApplied waits until every gateway in gateways that is live has
// published a configuration revision of at least rev (applied, completely
// or not), or until ctx ends. Gateways that are down are not waited for:
// they apply the current configuration when they return. It returns the
// live gateways still pending and those down, each sorted; err is ctx's
// error when some are still pending at its end, or an etcd failure.
//
// A gateway that goes down during the wait moves from pending to down;
// one that comes back is waited for again.
func WaitApplied(ctx context.Context, cli *clientv3.Client, prefix string, rev int64, gateways []string) (pending, down []string, err error) {
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quietLog})
	if err != nil {
		return nil, nil, err
	}
	peers := peer.Prefix(store.Prefix())
	live := store.Prefix() + string(cluster.LiveKey(""))
	// wait holds each gateway waited for: true pending, false down;
	// applied ones are removed.
	var wait map[string]bool
	result := func() ([]string, []string) {
		pending, down = []string{}, []string{}
		for _, name := range slices.Sorted(maps.Keys(wait)) {
			if wait[name] {
				pending = append(pending, name)
			} else {
				down = append(down, name)
			}
		}
		return pending, down
	}
	done := func() bool { return !slices.Contains(slices.Collect(maps.Values(wait)), true) }
	// load reads liveness and records at one revision; the watch of the
	// records follows from there (and load runs again after a compaction).
	load := func(ctx context.Context) (int64, error) {
		resp, err := cli.Txn(ctx).Then(
			clientv3.OpGet(live, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(peers, clientv3.WithPrefix()),
		).Commit()
		if err != nil {
			return 0, fmt.Errorf("node: read status records: %w", err)
		}
		isLive := map[string]bool{}
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			isLive[strings.TrimPrefix(string(kv.Key), live)] = true
		}
		recs := decodeRecords(store.Prefix(), resp.Responses[1].GetResponseRange().Kvs)
		wait = map[string]bool{}
		for _, name := range gateways {
			switch {
			case !isLive[name]:
				wait[name] = false
			case recs[name] == nil || recs[name].Applied.Revision < rev:
				wait[name] = true
			}
		}
		if done() {
			return 0, etcdwatch.ErrStop
		}
		return resp.Header.Revision, nil
	}
	apply := func(_ context.Context, b etcdwatch.Batch) error {
		for _, ev := range b.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), peers)
			if _, listed := wait[name]; !listed {
				continue
			}
			if ev.Type == mvccpb.DELETE {
				wait[name] = false // its lease ended
				continue
			}
			// A record exists only while its gateway's lease does.
			if p := decodeRecords(store.Prefix(), []*mvccpb.KeyValue{ev.Kv})[name]; p != nil && p.Applied.Revision >= rev {
				delete(wait, name)
			} else {
				wait[name] = true
			}
		}
		if done() {
			return etcdwatch.ErrStop
		}
		return nil
	}
	err = etcdwatch.Run(ctx, cli, 0, etcdwatch.Options{Prefix: peers, Load: load, Apply: apply, Logger: quietLog, Name: "gateway status"})
	pending, down = result()
	if err == nil && !done() {
		err = ctx.Err()
	}
	return pending, down, err
}

// decodeRecords returns the status each peers/ record carries, by gateway
// name; records without a status (a gateway that has not published one
// yet, or an older version) map to nil.
func decodeRecords(prefix string, kvs []*mvccpb.KeyValue) map[string]*Published {
	keyPrefix := peer.Prefix(prefix)
	out := make(map[string]*Published, len(kvs))
	for _, kv := range kvs {
		name := strings.TrimPrefix(string(kv.Key), keyPrefix)
		var rec peer.Record
		if name == "" || json.Unmarshal(kv.Value, &rec) != nil {
			continue
		}
		out[name] = nil
		if len(rec.Status) == 0 {
			continue
		}
		var p Published
		if json.Unmarshal(rec.Status, &p) == nil {
			out[name] = &p
		}
	}
	return out
}

// quietLog is the logger of the short-lived stores of ReadCluster and
// WaitApplied; what goes wrong reaches the caller as an error.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
