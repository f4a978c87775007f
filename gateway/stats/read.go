package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// staleAfter is how many publishing intervals old a record is when the
// reader takes it as unchanged since (a gateway rewrites a record whose
// counters did not change only every Refresh). It relies on synchronized
// clocks, which Ceph needs anyway.
const staleAfter = 3

// Read returns the window of every gateway that published a record in the
// cluster under prefix, by gateway name, for rates over window ending now
// (the reader's clock). Records that do not decode are left out. It reads
// the records, then for each the one written a window earlier from etcd's
// history.
func Read(ctx context.Context, kv clientv3.KV, prefix string, window time.Duration, now time.Time) (map[string]Window, error) {
	keyPrefix := prefix + KeyPrefix
	resp, err := kv.Get(ctx, keyPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("stats: read: %w", err)
	}
	out := make(map[string]Window, len(resp.Kvs))
	for _, item := range resp.Kvs {
		name := strings.TrimPrefix(string(item.Key), keyPrefix)
		var rec Record
		if name == "" || json.Unmarshal(item.Value, &rec) != nil {
			continue
		}
		rec.Gateway = name
		w, err := windowOf(ctx, kv, string(item.Key), rec, window, now)
		if err != nil {
			return nil, err
		}
		out[name] = w
	}
	return out, nil
}

// windowOf finds the base of rec's window in the history of key.
func windowOf(ctx context.Context, kv clientv3.KV, key string, rec Record, window time.Duration, now time.Time) (Window, error) {
	interval := rec.Interval
	if interval <= 0 {
		interval = Interval
	}
	w := Window{Cur: rec, AsOf: rec.Time}
	if now.Sub(rec.Time) > staleAfter*interval {
		w.AsOf = now
	}
	from := w.AsOf.Add(-window)
	if !rec.Time.After(from) {
		// Unchanged for longer than the window: nothing happened in it.
		base := rec
		w.Base = &base
		return w, nil
	}
	if !rec.Start.Before(from) || len(rec.History) == 0 {
		return w, nil // the counters started within the window (or have no history yet)
	}
	// The newest mark at or before the window's start; failing that, the
	// oldest one (the gateway published for less than the window).
	pick := 0
	for i, m := range rec.History {
		if !m.Time.After(from) {
			pick = i
		}
	}
	for _, m := range rec.History[pick:] {
		resp, err := kv.Get(ctx, key, clientv3.WithRev(m.Rev))
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue
		}
		if err != nil {
			return Window{}, fmt.Errorf("stats: read %s at revision %d: %w", key, m.Rev, err)
		}
		if len(resp.Kvs) == 0 {
			continue
		}
		var base Record
		if json.Unmarshal(resp.Kvs[0].Value, &base) != nil || !base.Start.Equal(rec.Start) {
			continue
		}
		w.Base = &base
		return w, nil
	}
	w.Unavailable = true
	return w, nil
}
