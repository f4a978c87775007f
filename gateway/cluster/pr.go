package cluster

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// GetPR returns the persistent reservation state of a disk as stored (opaque
// bytes, nil when none) and its mod revision (0 when none) for CASPR.
func (s *Store) GetPR(ctx context.Context, disk string) ([]byte, int64, error) {
	if err := ValidateDiskID(disk); err != nil {
		return nil, 0, err
	}
	resp, err := s.cli.Get(ctx, s.full(PRKey(disk)))
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: read reservations of %s: %w", disk, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// CASPR replaces a disk's reservation state if it is still at oldRev (0: no
// state stored yet) and returns the new revision. data nil or empty deletes
// the state. A *ConflictError means another gateway changed it first: read
// again and re-run the reservation command on the fresh state. The disk
// must exist (ErrNotFound otherwise), so state never outlives its disk.
func (s *Store) CASPR(ctx context.Context, disk string, oldRev int64, data []byte) (int64, error) {
	if err := ValidateDiskID(disk); err != nil {
		return 0, err
	}
	key, diskKey := s.full(PRKey(disk)), s.full(DiskKey(disk))
	write := clientv3.OpPut(key, string(data))
	if len(data) == 0 {
		write = clientv3.OpDelete(key)
	}
	txn, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", oldRev),
			clientv3.Compare(clientv3.CreateRevision(diskKey), ">", 0)).
		Then(write).
		Else(clientv3.OpGet(diskKey, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("cluster: write reservations of %s: %w", disk, err)
	}
	if !txn.Succeeded {
		if txn.Responses[0].GetResponseRange().Count == 0 {
			return 0, notFoundf("disk %s", disk)
		}
		return 0, &ConflictError{Key: PRKey(disk), Rev: txn.Header.Revision}
	}
	return txn.Header.Revision, nil
}
