package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registration is a gateway's liveness: an etcd lease kept alive in the
// background with live/<gateway> bound to it. When the daemon dies or loses
// etcd for longer than the TTL, the lease expires and the key vanishes, so
// peers see the gateway as gone.
type Registration struct {
	store   *Store
	gateway string
	lease   clientv3.LeaseID
	cancel  context.CancelFunc
	done    chan struct{} // closed when the lease is lost or Close ran
	stopped chan struct{} // closed when the keepalive goroutine exits
	once    sync.Once
	lost    bool
}

// Register makes gateway live for as long as the returned registration
// holds its lease. ttl (at least one second; etcd may raise it to its
// minimum) bounds how long a dead gateway still looks alive. If another
// registration of the same name still holds the key (a previous run of the
// daemon that has not expired yet), Register waits for it to go, until ctx
// ends. ctx bounds only the registration; the lease is kept alive until
// Close or until it is lost (see Done).
func (s *Store) Register(ctx context.Context, gateway string, ttl time.Duration) (*Registration, error) {
	if err := ValidateGatewayName(gateway); err != nil {
		return nil, err
	}
	if ttl < time.Second {
		return nil, invalidf("liveness ttl %v is below one second", ttl)
	}
	key := s.full(LiveKey(gateway))
	for {
		lease, err := s.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
		if err != nil {
			return nil, fmt.Errorf("cluster: grant lease: %w", err)
		}
		val, err := json.Marshal(Live{Gateway: gateway, Lease: int64(lease.ID), Since: time.Now().UTC()})
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease.ID))).
			Commit()
		if err == nil && resp.Succeeded {
			return s.keepAlive(gateway, lease.ID)
		}
		s.revoke(lease.ID)
		if err != nil {
			return nil, fmt.Errorf("cluster: register %s: %w", gateway, err)
		}
		s.log.Warn("gateway is still registered by an earlier lease; waiting for it to end", "gateway", gateway)
		if err := s.waitDeleted(ctx, key, resp.Header.Revision); err != nil {
			return nil, err
		}
	}
}

// waitDeleted blocks until key is deleted after revision rev.
func (s *Store) waitDeleted(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range s.cli.Watch(wctx, key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("cluster: wait for %s: %w", key, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("cluster: wait for %s: %w", key, errWatchClosed)
}

func (s *Store) keepAlive(gateway string, lease clientv3.LeaseID) (*Registration, error) {
	kctx, cancel := context.WithCancel(context.Background())
	ch, err := s.cli.KeepAlive(kctx, lease)
	if err != nil {
		cancel()
		s.revoke(lease)
		return nil, fmt.Errorf("cluster: keep lease alive: %w", err)
	}
	r := &Registration{
		store: s, gateway: gateway, lease: lease, cancel: cancel,
		done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go func() {
		defer close(r.stopped)
		// Drain every response: an unread keepalive channel fills up and the
		// client drops responses.
		for range ch {
		}
		if kctx.Err() == nil {
			s.log.Error("gateway liveness lease lost", "gateway", gateway)
			r.lost = true
		}
		r.once.Do(func() { close(r.done) })
	}()
	return r, nil
}

// Done is closed when the lease is lost (it expired, was revoked, or etcd
// could not be reached for longer than the TTL) or after Close. Peers may
// take over this gateway's LUNs from then on; register again to come back.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Lost reports, after Done is closed, whether the lease was lost rather than
// closed.
func (r *Registration) Lost() bool {
	select {
	case <-r.stopped:
		return r.lost
	default:
		return false
	}
}

// Lease is the etcd lease id; writes that must die with the gateway can be
// bound to it.
func (r *Registration) Lease() clientv3.LeaseID { return r.lease }

// Close stops the keepalive and revokes the lease, removing the live key at
// once.
func (r *Registration) Close(ctx context.Context) error {
	r.cancel()
	<-r.stopped
	_, err := r.store.cli.Revoke(ctx, r.lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("cluster: revoke lease of %s: %w", r.gateway, err)
	}
	return nil
}

// revoke gives back a lease that ended up unused; failures only delay its
// expiry.
func (s *Store) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.cli.Revoke(ctx, lease)
}

// LiveGateways lists the gateways whose lease is alive, ordered by name.
func (s *Store) LiveGateways(ctx context.Context) ([]Live, error) {
	resp, err := s.cli.Get(ctx, s.full(livePrefix), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: list live gateways: %w", err)
	}
	live := map[string]Live{}
	for _, kv := range resp.Kvs {
		ref := parseKey(s.rel(kv.Key))
		if ref.kind != kindLive {
			continue
		}
		var l Live
		if err := json.Unmarshal(kv.Value, &l); err != nil {
			s.log.Warn("undecodable liveness key", "key", string(kv.Key), "err", err)
		}
		l.Gateway = ref.name
		live[l.Gateway] = l
	}
	out := make([]Live, 0, len(live))
	for _, name := range slices.Sorted(maps.Keys(live)) {
		out = append(out, live[name])
	}
	return out, nil
}

// Resume keeps gateway's registration under lease, a lease an earlier
// registration lost contact with (etcd was unreachable), if etcd still
// holds it with the gateway's live key: etcd extends leases when it
// restarts, and nobody can have seen the gateway gone. It returns
// ErrLeaseGone when the lease or the key is gone; then peers may have
// taken over, and the gateway must register anew.
func (s *Store) Resume(ctx context.Context, gateway string, lease clientv3.LeaseID) (*Registration, error) {
	ttl, err := s.cli.TimeToLive(ctx, lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil, fmt.Errorf("cluster: lease of %s: %w", gateway, err)
	}
	if err != nil || ttl.TTL <= 0 {
		return nil, ErrLeaseGone
	}
	resp, err := s.cli.Get(ctx, s.full(LiveKey(gateway)))
	if err != nil {
		return nil, fmt.Errorf("cluster: live key of %s: %w", gateway, err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].Lease != int64(lease) {
		return nil, ErrLeaseGone
	}
	return s.keepAlive(gateway, lease)
}

// ErrLeaseGone: a gateway's liveness lease expired or was revoked.
var ErrLeaseGone = errors.New("cluster: liveness lease gone")
