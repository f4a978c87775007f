// Package events turns what happens in a gateway cluster into a stream of
// events, from one etcd watch of the cluster prefix: configuration
// changes, ownership moves, fencing, gateways joining and leaving. Each
// event carries the etcd revision that made it, so a reader that stops
// resumes after the last revision it saw and misses nothing (as long as
// etcd's history still has it; Compacted says when not). The REST API
// serves it as server-sent events (GET /api/v1/events).
//
// Fencing is not part of the configuration: the gateway that fences
// another gateway's Ceph client records it under events/fence/<disk>
// (RecordFence), bound to a lease of FenceTTL so that the records do not
// pile up; the watch sees each record when it is written.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Types of events.
const (
	// TypeConfig: a configuration record was written or deleted.
	TypeConfig = "config"
	// TypeOwner: a disk's ALUA owner changed (From to To, at Epoch).
	TypeOwner = "owner"
	// TypeFence: Gateway fenced the Ceph clients that held Disk's lock.
	TypeFence = "fence"
	// TypeGateway: a gateway joined (Op "join") or left ("leave") the
	// live gateways.
	TypeGateway = "gateway"
	// TypeCompacted: the revisions after Since are no longer in etcd's
	// history; the stream continues after Revision, the current one, and
	// what happened in between is lost (read the state again).
	TypeCompacted = "compacted"
)

// Ops of events.
const (
	OpPut    = "put"
	OpDelete = "delete"
	OpJoin   = "join"
	OpLeave  = "leave"
)

// Event is one thing that happened, at an etcd revision. Several events
// may share a revision (one transaction changing several records).
type Event struct {
	Revision int64  `json:"revision"`
	Type     string `json:"type"`
	// Op is put or delete (config), join or leave (gateway).
	Op string `json:"op,omitempty"`
	// Kind is the configuration entity (cluster.Kind*: target, lun,
	// host, ...) and Key its key relative to the cluster prefix.
	Kind string `json:"kind,omitempty"`
	Key  string `json:"key,omitempty"`
	// Value is the record written (config put), every secret in it
	// replaced by "***".
	Value json.RawMessage `json:"value,omitempty"`
	// Target, Name and LUN identify a configuration entity as its key
	// does (cluster.KeyInfo).
	Target string  `json:"target,omitempty"`
	Name   string  `json:"name,omitempty"`
	LUN    *uint64 `json:"lun,omitempty"`
	// Disk is the disk of an ownership move or a fencing.
	Disk string `json:"disk,omitempty"`
	// From and To are the owner before and after a move ("" for none);
	// From of a fencing is the owner the disk was taken from.
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Epoch uint64 `json:"epoch,omitempty"`
	// Gateway is the gateway that joined or left, or that fenced.
	Gateway string `json:"gateway,omitempty"`
	// Clients are the Ceph client addresses fenced (OSD blocklist).
	Clients []string `json:"clients,omitempty"`
	// Reason says why a gateway took a disk over and fenced; Error what
	// failed of the fencing.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Time is when it happened, when known (fencing, joining).
	Time *time.Time `json:"time,omitempty"`
	// Since is the revision a compacted stream was to resume after.
	Since int64 `json:"since,omitempty"`
}

// FencePrefix holds the fencing records, relative to the cluster prefix.
const FencePrefix = "events/fence/"

// FenceTTL is how long a fencing record stays readable in etcd.
const FenceTTL = 10 * time.Minute

// Fence is a fencing record: gateway took disk over from another gateway
// (or found its lock held by a client that did not hand it over) and put
// the clients holding the image's lock in the OSD blocklist.
type Fence struct {
	Disk    string    `json:"disk"`
	Gateway string    `json:"gateway"`
	From    string    `json:"from,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"`
	Clients []string  `json:"clients"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

// Leaser is the part of an etcd client RecordFence needs.
type Leaser interface {
	clientv3.KV
	clientv3.Lease
}

// RecordFence writes f under events/fence/<disk> in the cluster under
// prefix, with a lease of FenceTTL.
func RecordFence(ctx context.Context, cli Leaser, prefix string, f Fence) error {
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	f.Time = f.Time.UTC()
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	lease, err := cli.Grant(ctx, int64(FenceTTL/time.Second))
	if err != nil {
		return fmt.Errorf("events: record fencing of %s: %w", f.Disk, err)
	}
	if _, err := cli.Put(ctx, prefix+FencePrefix+f.Disk, string(body), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("events: record fencing of %s: %w", f.Disk, err)
	}
	return nil
}
