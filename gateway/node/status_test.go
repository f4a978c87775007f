package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memBackends serves every disk from memory, so a node runs without Ceph.
type memBackends struct {
	mu     sync.Mutex
	opened []string
	closed bool
}

func (b *memBackends) Open(d config.Disk) (rbdbackend.Image, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened = append(b.opened, d.Name)
	return rbdbackend.NewMemoryImage(d.Size), nil
}

func (b *memBackends) Ceph() (CephClient, error) { return fakeCeph{}, nil }

func (b *memBackends) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

type fakeCeph struct{}

func (fakeCeph) ClientAddr() string    { return "127.0.0.1:0/1" }
func (fakeCeph) Fenced() bool          { return false }
func (fakeCeph) Fence(string) error    { return nil }
func (fakeCeph) OnFenced(func(string)) {}
func (fakeCeph) Reconnect() error      { return nil }

func newTestNode(t *testing.T, opts Options) *Node {
	t.Helper()
	if opts.Backends == nil {
		opts.Backends = &memBackends{}
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.Version == "" {
		opts.Version = "9.9-test"
	}
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewChecksOptions(t *testing.T) {
	b := &memBackends{}
	tests := []struct {
		name string
		opts Options
		want string // in the error; "" for success
	}{
		{"defaults", Options{Gateway: "gw-a", Backends: b}, ""},
		{"no backends", Options{Gateway: "gw-a"}, "Backends"},
		{"bad name", Options{Gateway: "gw a", Backends: b}, "gateway name"},
		{"short lease", Options{Gateway: "gw-a", Backends: b, LeaseTTL: time.Second}, "lease TTL"},
		{"embedded with two endpoints", Options{Gateway: "gw-a", Backends: b, EmbeddedDir: "/tmp/x",
			Endpoints: []string{"127.0.0.1:2379", "127.0.0.1:2479"}}, "one address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				o := n.opts
				if !slices.Equal(o.Endpoints, []string{DefaultEndpoint}) || o.Prefix != cluster.DefaultPrefix ||
					o.LeaseTTL != DefaultLeaseTTL || o.StallTimeout != DefaultStallTimeout || o.EmbeddedPeer != DefaultEmbeddedPeer {
					t.Fatalf("defaults not applied: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// snapshotOf is a cluster of gw-a and gw-b serving one target with two
// disks; rbd/d0 is owned by gw-a.
func snapshotOf(rev int64) *cluster.Snapshot {
	const iqn = "iqn.2024-01.io.test:t1"
	return &cluster.Snapshot{
		Rev: rev,
		Gateways: map[string]cluster.Gateway{
			"gw-a": {Name: "gw-a", TPGID: 1, Portals: []string{"127.0.0.1:3260"}},
			"gw-b": {Name: "gw-b", TPGID: 2, Portals: []string{"127.0.0.2:3260"}},
		},
		Disks: map[string]cluster.Disk{
			"rbd/d0": {Pool: "rbd", Image: "d0", Size: 1 << 20, BlockSize: 512},
			"rbd/d1": {Pool: "rbd", Image: "d1", Size: 1 << 20, BlockSize: 512},
		},
		Targets: map[string]cluster.Target{iqn: {IQN: iqn, Gateways: []string{"gw-a", "gw-b"}}},
		LUNs: map[string]map[uint64]cluster.LUN{iqn: {
			0: {Target: iqn, ID: 0, Disk: "rbd/d0"},
			1: {Target: iqn, ID: 1, Disk: "rbd/d1"},
		}},
		Owners: map[string]cluster.Owner{"rbd/d0": {Disk: "rbd/d0", Gateway: "gw-a", Epoch: 3}},
		Live:   map[string]cluster.Live{"gw-b": {}, "gw-a": {}},
	}
}

// TestStatusSnapshot: Status reflects what the run loop recorded, fills in
// the ALUA states, and returns copies.
func TestStatusSnapshot(t *testing.T) {
	n := newTestNode(t, Options{Gateway: "gw-a", APIURL: "http://127.0.0.1:5000"})
	s := n.Status()
	if s.Name != "gw-a" || s.Version != "9.9-test" || s.APIURL != "http://127.0.0.1:5000" || s.Started.IsZero() ||
		s.Applied.Revision != 0 || s.Etcd.Connected || s.Etcd.LeaseHeld || s.Sessions == nil || s.Disks == nil {
		t.Fatalf("before Run: %+v", s)
	}

	snap := snapshotOf(42)
	cfg, err := cluster.Render(snap, "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	p := alua.NewProvider("gw-a", 1, quiet)
	p.Update(snap)
	n.setState(func(st *state) {
		st.leaseHeld = true
		st.provider = p
		st.appliedSnapshot(snap, cfg, nil)
	})
	s = n.Status()
	if s.Applied != (AppliedConfig{Revision: 42, Complete: true}) || !s.Etcd.LeaseHeld {
		t.Fatalf("applied %+v etcd %+v", s.Applied, s.Etcd)
	}
	if !slices.Equal(s.Portals, []string{"127.0.0.1:3260"}) || !slices.Equal(s.LiveGateways, []string{"gw-a", "gw-b"}) {
		t.Fatalf("portals %v live %v", s.Portals, s.LiveGateways)
	}
	want := []DiskStatus{
		{Disk: "rbd/d0", Owner: "gw-a", Epoch: 3, ALUAState: ALUAActiveOptimized},
		// Not claimed yet: no recorded owner; the plan gives it to gw-b.
		{Disk: "rbd/d1", Owner: "", Epoch: 0, ALUAState: ALUAActiveNonOptimized},
	}
	if !slices.Equal(s.Disks, want) {
		t.Fatalf("disks %+v, want %+v", s.Disks, want)
	}

	// The caller owns what it got.
	s.Disks[0].Owner = "mangled"
	s.Portals[0] = "mangled"
	if again := n.Status(); again.Disks[0].Owner != "gw-a" || again.Portals[0] != "127.0.0.1:3260" {
		t.Fatalf("Status shares its slices: %+v", again)
	}

	// A part that failed is reported; a revision that could not be
	// rendered keeps the one applied and says why.
	n.setState(func(st *state) { st.appliedSnapshot(snapshotOf(43), cfg, errors.New("rbd/d1: no such image")) })
	if a := n.Status().Applied; a.Revision != 43 || a.Complete || a.Error != "rbd/d1: no such image" {
		t.Fatalf("incomplete: %+v", a)
	}
	n.setState(func(st *state) { st.applyErr = "render: bad" })
	if a := n.Status().Applied; a.Revision != 43 || a.Error != "render: bad" {
		t.Fatalf("not rendered: %+v", a)
	}
}

// TestStatusConcurrent reads the status while the run loop's side
// replaces it (run with -race).
func TestStatusConcurrent(t *testing.T) {
	n := newTestNode(t, Options{Gateway: "gw-a"})
	snap := snapshotOf(1)
	cfg, err := cluster.Render(snap, "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := n.Status()
				if s.Applied.Revision > 0 && len(s.Disks) != 2 {
					t.Errorf("torn status: %+v", s)
					return
				}
				_, _ = json.Marshal(s)
			}
		}()
	}
	for i := range 500 {
		n.setState(func(st *state) { st.appliedSnapshot(snapshotOf(int64(i+1)), cfg, nil) })
	}
	close(stop)
	wg.Wait()
}

// TestStatusSessions logs an initiator in to an iSCSI server and reads its
// session through Status.
func TestStatusSessions(t *testing.T) {
	const iqn, ini = "iqn.2024-01.io.test:t1", "iqn.2024-01.io.test:host1"
	srv := iscsi.NewServer(iscsi.Options{Logger: quiet, NopInInterval: -1})
	dev := scsi.NewTarget(iqn, scsi.TargetOptions{Logger: quiet})
	for _, lun := range []uint64{0, 3} {
		lu, err := scsi.NewLU(rbdbackend.NewMemoryImage(1<<20), scsi.LUConfig{Name: "d", BlockSize: 512, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		dev.SetLU(lun, lu)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := &login.Credentials{User: "host1", Secret: "host1secret12"}
	if err := srv.SetTarget(iscsi.TargetSpec{IQN: iqn, Device: dev, TPGT: 1, RelativePortID: 1, PortGroupID: 1,
		Access: func(string) (bool, *login.Credentials) { return true, creds }}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	n := newTestNode(t, Options{Gateway: "gw-a"})
	n.setState(func(st *state) { st.server = srv })
	in, err := iscsitest.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = 5 * time.Second
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: ini, TargetName: iqn, CHAP: creds,
		Keys: []login.KV{{Key: "DataDigest", Value: "CRC32C"}}}); err != nil {
		t.Fatal(err)
	}
	// A discovery session is not listed.
	disc, err := iscsitest.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer disc.Close()
	disc.ISID[5] = 9
	if err := disc.Login(iscsitest.LoginOptions{InitiatorName: ini, Discovery: true}); err != nil {
		t.Fatal(err)
	}

	got := n.Status().Sessions
	if len(got) != 1 {
		t.Fatalf("sessions %+v", got)
	}
	s := got[0]
	want := Session{
		Gateway: "gw-a", Target: iqn, Initiator: ini, ISID: "801234560001", TSIH: in.TSIH,
		Portal: l.Addr().String(), RemoteAddress: in.Conn.LocalAddr().String(), LoginTime: s.LoginTime,
		HeaderDigest: "None", DataDigest: "CRC32C",
		MaxRecvDataSegmentLength: 262144, TargetMaxRecvDataSegmentLength: s.TargetMaxRecvDataSegmentLength,
		MaxBurstLength: s.MaxBurstLength, FirstBurstLength: s.FirstBurstLength,
		ImmediateData: true, InitialR2T: false, AuthMethod: "CHAP", LUNs: []uint64{0, 3},
	}
	if !slices.Equal(s.LUNs, want.LUNs) {
		t.Fatalf("LUNs %v", s.LUNs)
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("session\n%+v\nwant\n%+v", s, want)
	}
	if time.Since(s.LoginTime) > time.Minute || s.LoginTime.Location() != time.UTC ||
		s.MaxBurstLength == 0 || s.FirstBurstLength == 0 || s.TargetMaxRecvDataSegmentLength == 0 {
		t.Fatalf("session %+v", s)
	}
}

// TestStatusJSON pins the field names the REST API serves.
func TestStatusJSON(t *testing.T) {
	s := Status{
		Name:         "gw-a",
		Published:    Published{Version: "1", Portals: []string{}, Sessions: []Session{{LUNs: []uint64{0}}}},
		LiveGateways: []string{"gw-a"},
		Disks:        []DiskStatus{{Disk: "rbd/d0"}},
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name"`, `"version"`, `"started"`, `"portals"`, `"applied":{"revision":0,"complete":false}`,
		`"sessions"`, `"etcd":{"connected":false,"lease_held":false}`, `"live_gateways"`, `"disks"`, `"alua_state"`,
		`"epoch"`, `"owner"`, `"isid"`, `"tsih"`, `"remote_address"`, `"login_time"`, `"header_digest"`,
		`"data_digest"`, `"max_recv_data_segment_length"`, `"max_burst_length"`, `"first_burst_length"`,
		`"immediate_data"`, `"initial_r2t"`, `"auth_method"`, `"luns"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s missing from %s", key, b)
		}
	}
	// Only a published record carries updated_at; api_url only when set.
	for _, key := range []string{`"updated_at"`, `"api_url"`, `"sessions_truncated"`} {
		if strings.Contains(string(b), key) {
			t.Errorf("%s in %s", key, b)
		}
	}
}

func TestPublishedBoundsSessions(t *testing.T) {
	s := Status{Published: Published{Sessions: make([]Session, MaxPublishedSessions+5)}}
	p := publishedOf(s)
	if len(p.Sessions) != MaxPublishedSessions || !p.SessionsTruncated {
		t.Fatalf("%d sessions, truncated %v", len(p.Sessions), p.SessionsTruncated)
	}
	if p := publishedOf(Status{Published: Published{Sessions: make([]Session, 3)}}); p.SessionsTruncated {
		t.Fatal("truncated 3 sessions")
	}
}
