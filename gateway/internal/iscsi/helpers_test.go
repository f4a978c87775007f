package iscsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

const (
	testIQN       = "iqn.2024-01.org.example:disk1"
	testInitiator = "iqn.2024-01.org.example:host1"
	testBlockSize = 512
	testDiskSize  = 64 << 20
)

// logRecorder is a slog handler that fails the test on recovered panics
// and keeps every record for inspection.
type logRecorder struct {
	mu      sync.Mutex
	records []string
	panics  int
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, b.String())
	if strings.HasPrefix(rec.Message, "panic") {
		r.panics++
	}
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if strings.Contains(rec, s) {
			return true
		}
	}
	return false
}

// resetPanics forgets the panics a test provoked on purpose.
func (r *logRecorder) resetPanics() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = 0
}

func (r *logRecorder) panicCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.panics
}

// testEnv is a Server on a loopback listener with one target backed by a
// memory image.
type testEnv struct {
	t      testing.TB
	srv    *Server
	addr   string
	device *scsi.Target
	img    *rbdbackend.MemoryImage
	fault  *rbdbackend.FaultImage // wraps img: latency and errors on demand
	logs   *logRecorder
	spec   TargetSpec
}

type envOption func(*Options, *TargetSpec)

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	logs := &logRecorder{}
	o := Options{Logger: slog.New(logs), NopInInterval: -1, LoginTimeout: 5 * time.Second, LogoutGrace: time.Second}
	img := rbdbackend.NewMemoryImage(testDiskSize)
	dev := scsi.NewTarget(testIQN, scsi.TargetOptions{Logger: slog.New(logs)})
	fault := rbdbackend.NewFaultImage(img)
	lu, err := scsi.NewLU(fault, scsi.LUConfig{Name: "disk1", BlockSize: testBlockSize, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	dev.SetLU(0, lu)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spec := TargetSpec{
		IQN: testIQN, Alias: "disk one", Device: dev, TPGT: 1, RelativePortID: 1, PortGroupID: 1,
		Portals: []string{l.Addr().String()},
		Access:  func(string) (bool, *login.Credentials) { return true, nil },
	}
	for _, f := range opts {
		f(&o, &spec)
	}
	srv := NewServer(o)
	if err := srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	e := &testEnv{t: t, srv: srv, addr: l.Addr().String(), device: dev, img: img, fault: fault, logs: logs, spec: spec}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
		if n := logs.panicCount(); n > 0 {
			t.Errorf("%d panics were recovered", n)
		}
	})
	return e
}

func withTuning(f func(*Options)) envOption {
	return func(o *Options, _ *TargetSpec) { f(o) }
}

func withAccess(a func(string) (bool, *login.Credentials)) envOption {
	return func(_ *Options, s *TargetSpec) { s.Access = a }
}

// dial connects a fresh initiator.
func (e *testEnv) dial() *iscsitest.Initiator {
	e.t.Helper()
	in, err := iscsitest.Dial(e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	in.Timeout = 5 * time.Second
	e.t.Cleanup(func() { in.Close() })
	return in
}

// login dials and logs in to the test target with the given extra keys.
func (e *testEnv) login(keys ...login.KV) *iscsitest.Initiator {
	e.t.Helper()
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, Keys: keys}); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	clearUnitAttention(e.t, in)
	return in
}

// clearUnitAttention consumes the POWER ON unit attention of a new nexus.
func clearUnitAttention(t testing.TB, in *iscsitest.Initiator) {
	t.Helper()
	for range 3 {
		res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()})
		if err != nil {
			t.Fatalf("TEST UNIT READY: %v", err)
		}
		if res.Status == 0 {
			return
		}
	}
	t.Fatal("unit attention does not clear")
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *testEnv) connCount() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return len(e.srv.conns)
}

func (e *testEnv) sessionCount() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return len(e.srv.sessions)
}

func kv(k, v string) login.KV { return login.KV{Key: k, Value: v} }

func cdbTUR() []byte { return make([]byte, 6) }

func cdbRead10(lba uint32, blocks uint16) []byte {
	c := make([]byte, 10)
	c[0] = 0x28
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], blocks)
	return c
}

func cdbWrite10(lba uint32, blocks uint16) []byte {
	c := cdbRead10(lba, blocks)
	c[0] = 0x2a
	return c
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// write10 writes data (whole blocks) at lba and checks GOOD.
func write10(t testing.TB, in *iscsitest.Initiator, lba uint32, data []byte) *iscsitest.Result {
	t.Helper()
	res, err := in.Do(&iscsitest.Cmd{CDB: cdbWrite10(lba, uint16(len(data)/testBlockSize)), EDTL: uint32(len(data)), Data: data})
	if err != nil {
		t.Fatalf("WRITE(10): %v", err)
	}
	if res.Status != 0 {
		t.Fatalf("WRITE(10) status %#x sense %x", res.Status, res.Sense)
	}
	return res
}

// read10 reads n bytes at lba and checks GOOD.
func read10(t testing.TB, in *iscsitest.Initiator, lba uint32, n int) *iscsitest.Result {
	t.Helper()
	res, err := in.Do(&iscsitest.Cmd{CDB: cdbRead10(lba, uint16(n/testBlockSize)), Read: true, EDTL: uint32(n)})
	if err != nil {
		t.Fatalf("READ(10): %v", err)
	}
	if res.Status != 0 {
		t.Fatalf("READ(10) status %#x sense %x", res.Status, res.Sense)
	}
	return res
}

func (e *testEnv) imageBytes(off, n int) []byte {
	b := make([]byte, n)
	if _, err := e.img.ReadAt(b, int64(off)); err != nil && err != io.EOF {
		e.t.Fatal(err)
	}
	return b
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: differ at byte %d (len %d vs %d)", what, i, len(got), len(want))
	}
}
