package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ClaimOwner makes gateway the ALUA owner of disk if the disk's owner epoch
// is still expectedEpoch (0: the disk has never had an owner), and returns
// the new owner record with the epoch bumped by one. Concurrent claims from
// the same epoch therefore have exactly one winner; the others get a
// *ConflictError and should re-read with Owners. The epoch is a fencing
// token: a gateway that finds a higher epoch than the one it claimed has
// been superseded. The disk and the gateway must exist.
func (s *Store) ClaimOwner(ctx context.Context, disk, gateway string, expectedEpoch uint64) (Owner, error) {
	if err := ValidateDiskID(disk); err != nil {
		return Owner{}, err
	}
	if err := ValidateGatewayName(gateway); err != nil {
		return Owner{}, err
	}
	key := s.full(OwnerKey(disk))
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Owner{}, fmt.Errorf("cluster: read owner of %s: %w", disk, err)
	}
	var cur Owner
	var modRev int64
	if len(resp.Kvs) == 1 {
		modRev = resp.Kvs[0].ModRevision
		if err := json.Unmarshal(resp.Kvs[0].Value, &cur); err != nil {
			return Owner{}, fmt.Errorf("cluster: owner of %s cannot be decoded: %w", disk, err)
		}
	}
	if cur.Epoch != expectedEpoch {
		return Owner{}, &ConflictError{Key: OwnerKey(disk), Rev: resp.Header.Revision}
	}
	next := Owner{Disk: disk, Gateway: gateway, Epoch: expectedEpoch + 1}
	val, err := json.Marshal(next)
	if err != nil {
		return Owner{}, err
	}
	diskKey, gwKey := s.full(DiskKey(disk)), s.full(GatewayKey(gateway))
	txn, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev),
			clientv3.Compare(clientv3.CreateRevision(diskKey), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(gwKey), ">", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(diskKey, clientv3.WithCountOnly()), clientv3.OpGet(gwKey, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return Owner{}, fmt.Errorf("cluster: claim %s: %w", disk, err)
	}
	if !txn.Succeeded {
		if txn.Responses[0].GetResponseRange().Count == 0 {
			return Owner{}, notFoundf("disk %s", disk)
		}
		if txn.Responses[1].GetResponseRange().Count == 0 {
			return Owner{}, notFoundf("gateway %s", gateway)
		}
		return Owner{}, &ConflictError{Key: OwnerKey(disk), Rev: txn.Header.Revision}
	}
	return next, nil
}

// Owners returns the current owner of every disk that has one, by disk id.
func (s *Store) Owners(ctx context.Context) (map[string]Owner, error) {
	resp, err := s.cli.Get(ctx, s.full(ownersPrefix), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: list owners: %w", err)
	}
	out := make(map[string]Owner, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		ref := parseKey(s.rel(kv.Key))
		if ref.kind != kindOwner {
			continue
		}
		var o Owner
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			s.log.Warn("undecodable owner key", "key", string(kv.Key), "err", err)
			continue
		}
		o.Disk = ref.name
		out[o.Disk] = o
	}
	return out, nil
}
