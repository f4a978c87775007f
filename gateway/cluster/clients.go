package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// clientsPrefix holds each gateway's Ceph client address. Unlike live/ and
// peers/ the key is not bound to a lease: a gateway that is gone is fenced
// by the address it left there.
const clientsPrefix = "clients/"

// ClientKey is the key of the Ceph client a gateway serves through.
func ClientKey(gateway string) Key { return Key(clientsPrefix + gateway) }

// ClientRecord is the Ceph client address a gateway serves through and
// the liveness lease it held when it recorded it.
type ClientRecord struct {
	Gateway string `json:"gateway"`
	Addr    string `json:"addr"`
	Lease   int64  `json:"lease"`
}

// RecordClient records that gateway, registered with lease, serves through
// the Ceph client at addr. A gateway records a client before it serves
// through it, so that whoever finds the gateway gone can fence it.
func (s *Store) RecordClient(ctx context.Context, gateway, addr string, lease clientv3.LeaseID) error {
	if err := ValidateGatewayName(gateway); err != nil {
		return err
	}
	val, err := json.Marshal(ClientRecord{Gateway: gateway, Addr: addr, Lease: int64(lease)})
	if err != nil {
		return err
	}
	if _, err := s.cli.Put(ctx, s.full(ClientKey(gateway)), string(val)); err != nil {
		return fmt.Errorf("cluster: record the Ceph client of %s: %w", gateway, err)
	}
	return nil
}

// GoneClient returns the Ceph client address gateway recorded if the lease
// it recorded it under is no longer the gateway's live lease: that client
// belongs to a run of the gateway that is dead or cut off from etcd, and
// must be fenced before anyone else takes its disks. It returns "" when
// the gateway is live under that lease or recorded nothing. Both keys are
// read at one revision, so a gateway registering meanwhile is not taken
// for gone.
func (s *Store) GoneClient(ctx context.Context, gateway string) (string, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.full(ClientKey(gateway))),
		clientv3.OpGet(s.full(LiveKey(gateway))),
	).Commit()
	if err != nil {
		return "", fmt.Errorf("cluster: read the Ceph client of %s: %w", gateway, err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return "", nil
	}
	var rec ClientRecord
	if err := json.Unmarshal(kvs[0].Value, &rec); err != nil {
		return "", fmt.Errorf("cluster: Ceph client record of %s cannot be decoded: %w", gateway, err)
	}
	if live := resp.Responses[1].GetResponseRange().Kvs; len(live) == 1 && live[0].Lease == rec.Lease {
		return "", nil
	}
	return rec.Addr, nil
}
