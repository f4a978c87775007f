package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

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

// ClientRecordKept says why the Ceph client record of gateway must stay,
// "" when nobody can need it to fence that gateway any more. The record is
// looked up by the gateway's name: by the takeover of a disk it owns, and
// by a reservation change on a disk of a target it serves that it does not
// confirm. A live gateway (any live/ key) keeps it as well: its run may die
// with writes in flight and own a disk by then; when it registers again it
// records its client again anyway.
func ClientRecordKept(s *Snapshot, gateway string) string {
	if s.ModRev(LiveKey(gateway)) != 0 {
		return fmt.Sprintf("gateway %s is live: if it dies with writes in flight it is fenced by this record", gateway)
	}
	for _, iqn := range s.TargetIQNs() {
		if slices.Contains(s.Targets[iqn].Gateways, gateway) {
			return fmt.Sprintf("gateway %s serves target %s", gateway, iqn)
		}
	}
	for _, disk := range slices.Sorted(maps.Keys(s.Owners)) {
		if s.Owners[disk].Gateway == gateway {
			return fmt.Sprintf("gateway %s owns disk %s: its takeover fences it by this record", gateway, disk)
		}
	}
	for k := range s.Damaged {
		if strings.HasPrefix(string(k), ownersPrefix) {
			return fmt.Sprintf("%s cannot be decoded and may name gateway %s as its owner", k, gateway)
		}
	}
	return ""
}

// ForgetClient deletes the Ceph client record of a gateway that is no
// longer configured (a gateway deleted while it was live or owned a disk
// keeps it) once ClientRecordKept allows it. It returns why the record
// stays, "" when it was deleted; a not-found error when there is none.
func (s *Store) ForgetClient(ctx context.Context, gateway string) (kept string, err error) {
	if err := ValidateGatewayName(gateway); err != nil {
		return "", err
	}
	snap, _, err := s.Load(ctx)
	if err != nil {
		return "", err
	}
	// Read at the snapshot's revision, so that the compares below cover
	// everything decided from it.
	rec, err := s.cli.Get(ctx, s.full(ClientKey(gateway)), clientv3.WithRev(snap.Rev))
	if err != nil {
		return "", fmt.Errorf("cluster: read the Ceph client record of %s: %w", gateway, err)
	}
	if len(rec.Kvs) == 0 {
		return "", notFoundf("%s", ClientKey(gateway))
	}
	if _, ok := snap.Gateways[gateway]; ok || snap.ModRev(GatewayKey(gateway)) != 0 {
		return "", inUsef("gateway %s is configured: delete the gateway, its record goes with it when nobody needs it", gateway)
	}
	if kept := ClientRecordKept(snap, gateway); kept != "" {
		return kept, nil
	}
	// What the rule rests on must still hold when the record goes: the
	// gateway neither configured nor registered again, no disk claimed
	// since the snapshot, no target added naming it.
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(s.full(GatewayKey(gateway))), "=", 0),
		clientv3.Compare(clientv3.ModRevision(s.full(LiveKey(gateway))), "=", 0),
		clientv3.Compare(clientv3.ModRevision(s.full(ownersPrefix)), "<", snap.Rev+1).WithPrefix(),
		clientv3.Compare(clientv3.ModRevision(s.full(targetsPrefix)), "<", snap.Rev+1).WithPrefix(),
	).Then(clientv3.OpDelete(s.full(ClientKey(gateway)))).Commit()
	if err != nil {
		return "", fmt.Errorf("cluster: delete the Ceph client record of %s: %w", gateway, err)
	}
	if !resp.Succeeded {
		return "", &ConflictError{Rev: resp.Header.Revision, txn: true}
	}
	return "", nil
}
