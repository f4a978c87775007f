package model

import (
	"encoding/json"
	"time"
)

// Event types of GET /events (the SSE event name).
const (
	EventConnected = "connected" // first on every stream: the revision it starts after
	EventConfig    = "config"    // a configuration record written or deleted
	EventOwner     = "owner"     // a disk's ALUA owner changed
	EventFence     = "fence"     // a gateway fenced Ceph clients holding a disk's lock
	EventGateway   = "gateway"   // a gateway joined or left the live gateways
	EventCompacted = "compacted" // the history after since is gone: read the state again
)

// Event is one server-sent event of GET /events: its data, as JSON. Which
// fields are set depends on Type.
type Event struct {
	// Revision is the etcd revision of the change (the SSE id).
	Revision int64  `json:"revision"`
	Type     string `json:"type"`
	// Op: put or delete (config), join or leave (gateway).
	Op string `json:"op,omitempty"`
	// Kind is the configuration entity: schema, settings,
	// discovery_auth, gateway, disk, target, lun, host, host_group. Key
	// is its etcd key relative to the cluster prefix.
	Kind string `json:"kind,omitempty"`
	Key  string `json:"key,omitempty"`
	// Value is the record written (config put), secrets as "***".
	Value json.RawMessage `json:"value,omitempty"`
	// Target, Name and LUN identify the entity as its key does.
	Target string  `json:"target,omitempty"`
	Name   string  `json:"name,omitempty"`
	LUN    *uint64 `json:"lun,omitempty"`
	// Disk, From, To and Epoch describe an ownership move (From empty for
	// a first owner) and a fencing (From: the owner taken over from).
	Disk  string `json:"disk,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Epoch uint64 `json:"epoch,omitempty"`
	// Gateway joined or left, or fenced; Clients it fenced, Reason why,
	// Error what failed of it.
	Gateway string   `json:"gateway,omitempty"`
	Clients []string `json:"clients,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Time is when it happened, when known (fencing, joining).
	Time *time.Time `json:"time,omitempty"`
	// Since is the revision a compacted stream was to resume after.
	Since int64 `json:"since,omitempty"`
	// Server is the gateway serving the stream (connected).
	Server string `json:"server,omitempty"`
}
