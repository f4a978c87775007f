package node

import (
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// Status is one gateway's state as it sees it itself. The REST API serves
// it as it is.
type Status struct {
	Name string `json:"name"`
	// Published is the part every gateway also publishes in etcd.
	Published
	Etcd EtcdStatus `json:"etcd"`
	// LiveGateways are the gateways holding their liveness lease, as of
	// the configuration revision applied.
	LiveGateways []string `json:"live_gateways"`
	// Disks are the disks this gateway serves.
	Disks []DiskStatus `json:"disks"`
}

// Published is what a gateway writes about itself in its peers/ record in
// etcd, so that any gateway can report on every other.
type Published struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// APIURL is where the gateway's REST API is reachable (empty: none).
	APIURL string `json:"api_url,omitempty"`
	// Portals are the gateway's configured iSCSI portals ("ip:port").
	Portals []string      `json:"portals"`
	Applied AppliedConfig `json:"applied"`
	// Sessions are the logged-in iSCSI sessions (discovery sessions left
	// out). The published list is cut at MaxPublishedSessions, and
	// SessionsTruncated says so.
	Sessions          []Session `json:"sessions"`
	SessionsTruncated bool      `json:"sessions_truncated,omitempty"`
	// UpdatedAt is when the record was written; absent from a gateway's
	// own Status.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// AppliedConfig is the newest configuration revision a gateway applied.
type AppliedConfig struct {
	// Revision is the etcd revision of the configuration; 0 before the
	// first one.
	Revision int64 `json:"revision"`
	// Complete is false when a part of it could not be applied (an image
	// that did not open, a portal already in use); the gateway retries.
	Complete bool `json:"complete"`
	// Error says what failed: the last revision that could not be applied
	// at all, or the part of Revision that was not.
	Error string `json:"error,omitempty"`
}

// EtcdStatus is the gateway's connection to etcd.
type EtcdStatus struct {
	// Connected: the client's connection to an etcd server is up.
	Connected bool `json:"connected"`
	// LeaseHeld: the gateway holds its liveness lease (registered).
	LeaseHeld bool `json:"lease_held"`
}

// ALUA access states as a gateway reports them.
const (
	ALUAActiveOptimized    = "Active/Optimized"
	ALUAActiveNonOptimized = "Active/Non-optimized"
	ALUATransitioning      = "Transitioning"
)

// DiskStatus is one disk as this gateway serves it.
type DiskStatus struct {
	Disk string `json:"disk"` // "<pool>/<image>"
	// Owner is the gateway recorded as the disk's ALUA owner, with its
	// epoch; empty (epoch 0) before the first claim.
	Owner string `json:"owner"`
	Epoch uint64 `json:"epoch"`
	// ALUAState is what this gateway's target port group reports for the
	// disk: one of the ALUA* constants.
	ALUAState string `json:"alua_state"`
}

// Session is one logged-in iSCSI session on a gateway.
type Session struct {
	Gateway       string    `json:"gateway"`
	Target        string    `json:"target"`
	Initiator     string    `json:"initiator"`
	ISID          string    `json:"isid"` // 12 hex digits
	TSIH          uint16    `json:"tsih"`
	Portal        string    `json:"portal"` // the local address the initiator connected to
	RemoteAddress string    `json:"remote_address"`
	LoginTime     time.Time `json:"login_time"`
	// HeaderDigest and DataDigest are "CRC32C" or "None".
	HeaderDigest string `json:"header_digest"`
	DataDigest   string `json:"data_digest"`
	// MaxRecvDataSegmentLength is the initiator's declared value (the
	// largest data segment the gateway sends);
	// TargetMaxRecvDataSegmentLength the gateway's. Bytes.
	MaxRecvDataSegmentLength       int  `json:"max_recv_data_segment_length"`
	TargetMaxRecvDataSegmentLength int  `json:"target_max_recv_data_segment_length"`
	MaxBurstLength                 int  `json:"max_burst_length"`
	FirstBurstLength               int  `json:"first_burst_length"`
	ImmediateData                  bool `json:"immediate_data"`
	InitialR2T                     bool `json:"initial_r2t"`
	// AuthMethod is "CHAP" or "None".
	AuthMethod string `json:"auth_method"`
	// LUNs are the LUNs the session sees.
	LUNs []uint64 `json:"luns"`
}

// MaxPublishedSessions bounds the sessions a gateway publishes in etcd,
// which keeps the record far below etcd's request size limit.
const MaxPublishedSessions = 1000

// state is what the run loop knows, published whole (copy, change, store)
// and never modified once stored, so Status reads it without a lock.
type state struct {
	leaseHeld bool
	applied   AppliedConfig
	portals   []string
	live      []string
	disks     []DiskStatus // ALUAState filled in by Status
	applyErr  string       // the last revision that could not be rendered
	// Components Status asks for what changes without a new revision;
	// nil until the gateway is defined in the cluster.
	server   *iscsi.Server
	provider *alua.Provider
}

// setState replaces the state with a changed copy. Only Run's goroutine
// calls it.
func (n *Node) setState(change func(*state)) {
	s := *n.state.Load()
	change(&s)
	n.state.Store(&s)
	n.kickPublisher()
}

// appliedSnapshot records that the configuration of s, rendered as cfg,
// was applied; err is what failed of it.
func (s *state) appliedSnapshot(snap *cluster.Snapshot, cfg *config.Config, err error) {
	s.applied = AppliedConfig{Revision: snap.Rev, Complete: err == nil}
	if err != nil {
		s.applied.Error = err.Error()
	}
	s.applyErr = ""
	s.portals = slices.Clone(cfg.Portals)
	s.live = slices.Sorted(maps.Keys(snap.Live))
	s.disks = make([]DiskStatus, 0, len(cfg.Disks))
	for _, d := range cfg.Disks {
		o := snap.Owners[d.Name]
		s.disks = append(s.disks, DiskStatus{Disk: d.Name, Owner: o.Gateway, Epoch: o.Epoch})
	}
	slices.SortFunc(s.disks, func(a, b DiskStatus) int { return strings.Compare(a.Disk, b.Disk) })
}

// Status returns this gateway's status: a copy, safe to keep and modify.
// The sessions, the ALUA states and the etcd connection are read at the
// time of the call; the rest is as of the configuration revision applied.
func (n *Node) Status() Status {
	st := n.state.Load()
	s := Status{
		Name: n.opts.Gateway,
		Published: Published{
			Version:  n.opts.Version,
			Started:  n.started,
			APIURL:   n.opts.APIURL,
			Portals:  nonNil(slices.Clone(st.portals)),
			Applied:  st.applied,
			Sessions: []Session{},
		},
		Etcd:         EtcdStatus{Connected: n.etcdConnected(), LeaseHeld: st.leaseHeld},
		LiveGateways: nonNil(slices.Clone(st.live)),
		Disks:        nonNil(slices.Clone(st.disks)),
	}
	if st.applyErr != "" {
		s.Applied.Error = st.applyErr
	}
	if st.provider != nil {
		for i := range s.Disks {
			s.Disks[i].ALUAState = aluaState(st.provider.State(s.Disks[i].Disk))
		}
	}
	if st.server != nil {
		s.Sessions = sessions(n.opts.Gateway, st.server.Sessions())
	}
	return s
}

// etcdConnected reports whether the client's connection is up.
func (n *Node) etcdConnected() bool {
	cli := n.cli.Load()
	if cli == nil {
		return false
	}
	conn := cli.ActiveConnection()
	return conn != nil && conn.GetState() == connectivity.Ready
}

// sessions converts the iSCSI server's list: logged-in sessions of
// targets only.
func sessions(gateway string, list []iscsi.SessionInfo) []Session {
	out := make([]Session, 0, len(list))
	for _, si := range list {
		if si.Discovery || si.State != iscsi.SessionLoggedIn {
			continue
		}
		out = append(out, Session{
			Gateway:                        gateway,
			Target:                         si.Target,
			Initiator:                      si.Initiator,
			ISID:                           si.ISID,
			TSIH:                           si.TSIH,
			Portal:                         si.Portal,
			RemoteAddress:                  si.Remote,
			LoginTime:                      si.LoginTime.UTC(),
			HeaderDigest:                   digest(si.HeaderDigest),
			DataDigest:                     digest(si.DataDigest),
			MaxRecvDataSegmentLength:       si.MaxRecvDataSegmentLength,
			TargetMaxRecvDataSegmentLength: si.TargetMaxRecvDataSegmentLength,
			MaxBurstLength:                 si.MaxBurstLength,
			FirstBurstLength:               si.FirstBurstLength,
			ImmediateData:                  si.ImmediateData,
			InitialR2T:                     si.InitialR2T,
			AuthMethod:                     si.AuthMethod,
			LUNs:                           nonNil(si.LUNs),
		})
	}
	return out
}

func digest(crc bool) string {
	if crc {
		return "CRC32C"
	}
	return "None"
}

func aluaState(s scsi.AccessState) string {
	switch s {
	case scsi.ActiveOptimized:
		return ALUAActiveOptimized
	case scsi.Transitioning:
		return ALUATransitioning
	}
	return ALUAActiveNonOptimized
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
