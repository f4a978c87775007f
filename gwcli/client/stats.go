package client

import (
	"context"
	"net/url"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// StatsFilter says which rows GET .../stats answers: every LUN, a
// target's or a gateway's (Target and Gateway are exclusive; Target wins).
// Window is the span of the rates (the API's default, 5 s, when 0).
type StatsFilter struct {
	Target, Gateway string
	Window          time.Duration
}

// Stats reads the rates of each LUN through each gateway
// (GET /luns/stats, /targets/{iqn}/stats or /gateways/{name}/stats).
func (c *Client) Stats(ctx context.Context, f StatsFilter) (model.Stats, error) {
	path := "/luns/stats"
	switch {
	case f.Target != "":
		path = "/targets/" + seg(f.Target) + "/stats"
	case f.Gateway != "":
		path = "/gateways/" + seg(f.Gateway) + "/stats"
	}
	var q url.Values
	if f.Window > 0 {
		q = url.Values{"window": {f.Window.String()}}
	}
	v, _, err := get[model.Stats](ctx, c, path, q)
	return v, err
}
