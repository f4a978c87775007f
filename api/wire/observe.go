package wire

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/events"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// Stats is api.Stats over the counters the gateways publish in etcd.
type Stats struct {
	Cli    *clientv3.Client
	Prefix string
}

var _ api.Stats = Stats{}

func (s Stats) Windows(ctx context.Context, window time.Duration) (map[string]stats.Window, error) {
	return stats.Read(ctx, s.Cli, s.Prefix, window, time.Now())
}

// Events is api.Events over an etcd watch of the cluster.
type Events struct {
	Cli    *clientv3.Client
	Prefix string
	Logger *slog.Logger
}

var _ api.Events = Events{}

func (e Events) Follow(ctx context.Context, since int64, start func(int64) error, send func([]model.Event) error) error {
	return events.Follow(ctx, e.Cli, events.Options{
		Prefix: e.Prefix,
		Since:  since,
		Start:  start,
		Send: func(evs []events.Event) error {
			out := make([]model.Event, len(evs))
			for i, ev := range evs {
				out[i] = model.Event{Revision: ev.Revision, Type: ev.Type, Op: ev.Op, Kind: ev.Kind, Key: ev.Key,
					Value: ev.Value, Target: ev.Target, Name: ev.Name, LUN: ev.LUN, Disk: ev.Disk, From: ev.From,
					To: ev.To, Epoch: ev.Epoch, Gateway: ev.Gateway, Clients: ev.Clients, Reason: ev.Reason,
					Error: ev.Error, Time: ev.Time, Since: ev.Since}
			}
			return send(out)
		},
		Logger: e.Logger,
	})
}
