package etcdwatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
)

var etcd *clustertest.Etcd

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdwatch-etcd")
	if err != nil {
		panic(err)
	}
	if etcd, err = clustertest.StartEtcd(dir); err != nil {
		fmt.Fprintln(os.Stderr, "etcdwatch tests without etcd:", err)
		etcd = nil
	}
	code := m.Run()
	if etcd != nil {
		etcd.Stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// testLogger discards logs unless ETCDWATCH_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("ETCDWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// setup returns a client and a prefix of the test's own.
func setup(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	if etcd == nil {
		t.Skip("etcd not available")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, val)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Delete(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// mirror is a caller of Run: a copy of the prefix's keys kept by Load and
// Apply, with a record of what happened.
type mirror struct {
	cli    *clientv3.Client
	prefix string

	mu      sync.Mutex
	kv      map[string]string
	rev     int64    // of the newest Load or Batch
	loads   []int64  // revisions Load read at
	applied []string // "put k=v@rev" / "del k@rev", in delivery order
	changed chan struct{}
}

func newMirror(cli *clientv3.Client, prefix string) *mirror {
	return &mirror{cli: cli, prefix: prefix, kv: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (m *mirror) load(ctx context.Context) (int64, error) {
	resp, err := m.cli.Get(ctx, m.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.kv = map[string]string{}
	for _, kv := range resp.Kvs {
		m.kv[strings.TrimPrefix(string(kv.Key), m.prefix)] = string(kv.Value)
	}
	m.rev = resp.Header.Revision
	m.loads = append(m.loads, m.rev)
	m.mu.Unlock()
	m.signal()
	return resp.Header.Revision, nil
}

func (m *mirror) apply(_ context.Context, b etcdwatch.Batch) error {
	m.mu.Lock()
	for _, ev := range b.Events {
		k := strings.TrimPrefix(string(ev.Kv.Key), m.prefix)
		if ev.Type == mvccpb.DELETE {
			delete(m.kv, k)
			m.applied = append(m.applied, fmt.Sprintf("del %s@%d", k, ev.Kv.ModRevision))
		} else {
			m.kv[k] = string(ev.Kv.Value)
			m.applied = append(m.applied, fmt.Sprintf("put %s=%s@%d", k, ev.Kv.Value, ev.Kv.ModRevision))
		}
	}
	if b.Rev < m.rev {
		m.applied = append(m.applied, fmt.Sprintf("revision went back from %d to %d", m.rev, b.Rev))
	}
	m.rev = b.Rev
	m.mu.Unlock()
	m.signal()
	return nil
}

func (m *mirror) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *mirror) options() etcdwatch.Options {
	return etcdwatch.Options{Prefix: m.prefix, Load: m.load, Apply: m.apply, Logger: testLogger(), Name: "test"}
}

// start runs Run in the background; the returned function stops it and
// returns Run's result.
func (m *mirror) start(t *testing.T, w clientv3.Watcher, from int64, o etcdwatch.Options) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- etcdwatch.Run(ctx, w, from, o) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				t.Error("etcdwatch.Run did not end with its context")
			}
		})
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitLoads waits until Load has read n times.
func (m *mirror) waitLoads(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		m.mu.Lock()
		got := len(m.loads)
		m.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-m.changed:
		case <-deadline:
			t.Fatalf("%d loads, want %d", got, n)
		}
	}
}

// waitRev waits until the mirror reached rev.
func (m *mirror) waitRev(t *testing.T, rev int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		m.mu.Lock()
		got := m.rev
		m.mu.Unlock()
		if got >= rev {
			return
		}
		select {
		case <-m.changed:
		case <-deadline:
			t.Fatalf("mirror at revision %d, want %d", got, rev)
		}
	}
}

func (m *mirror) snapshot() (kv map[string]string, loads []int64, applied []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps(m.kv), slices.Clone(m.loads), slices.Clone(m.applied)
}

func maps(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// flaky wraps a client's Watcher: it can end every watch after a number
// of responses (an interrupted watch), refuse watches (cut off from etcd),
// and records whether each watch required a leader.
type flaky struct {
	clientv3.Watcher

	mu         sync.Mutex
	breakAfter int // end each watch after this many responses; 0: never
	cut        bool
	watches    int
	noLeader   int // watches without RequireLeader
	cancels    []context.CancelFunc
}

func (f *flaky) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	out := make(chan clientv3.WatchResponse)
	f.mu.Lock()
	f.watches++
	if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(rpctypes.MetadataRequireLeaderKey)) == 0 {
		f.noLeader++
	}
	cut, limit := f.cut, f.breakAfter
	ctx, cancel := context.WithCancel(ctx)
	f.cancels = append(f.cancels, cancel)
	f.mu.Unlock()
	if cut {
		cancel()
		close(out)
		return out
	}
	in := f.Watcher.Watch(ctx, key, opts...)
	go func() {
		defer close(out)
		defer cancel()
		for n := 1; ; n++ {
			select {
			case wr, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- wr:
				case <-ctx.Done():
					return
				}
				if limit > 0 && n >= limit {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// setCut ends every open watch and refuses new ones while cut.
func (f *flaky) setCut(cut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = cut
	if cut {
		for _, c := range f.cancels {
			c()
		}
		f.cancels = nil
	}
}

func (f *flaky) counts() (watches, noLeader int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches, f.noLeader
}

func TestFollowsFromRevision(t *testing.T) {
	cli, prefix := setup(t)
	put(t, cli, prefix+"a", "1")
	from := put(t, cli, prefix+"b", "1")
	put(t, cli, "/elsewhere/"+prefix, "x") // outside the prefix
	m := newMirror(cli, prefix)
	m.kv = map[string]string{"a": "1", "b": "1"} // what the caller has at from
	w := &flaky{Watcher: cli.Watcher}
	m.start(t, w, from, m.options())

	put(t, cli, prefix+"a", "2")
	del(t, cli, prefix+"b")
	last := put(t, cli, prefix+"c", "1")
	m.waitRev(t, last, 10*time.Second)
	kv, loads, applied := m.snapshot()
	if len(loads) != 0 {
		t.Errorf("loaded at %v; from a revision nothing needs loading", loads)
	}
	want := []string{
		fmt.Sprintf("put a=2@%d", last-2), fmt.Sprintf("del b@%d", last-1), fmt.Sprintf("put c=1@%d", last),
	}
	if !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if fmt.Sprint(kv) != "map[a:2 c:1]" {
		t.Errorf("state %v", kv)
	}
	if _, noLeader := w.counts(); noLeader != 0 {
		t.Errorf("%d watches without RequireLeader", noLeader)
	}
}

func TestLoadsFirstFromZero(t *testing.T) {
	cli, prefix := setup(t)
	put(t, cli, prefix+"a", "1")
	m := newMirror(cli, prefix)
	m.start(t, cli, 0, m.options())
	m.waitLoads(t, 1, 10*time.Second)
	rev := put(t, cli, prefix+"b", "1")
	m.waitRev(t, rev, 10*time.Second)
	kv, loads, applied := m.snapshot()
	if len(loads) != 1 || fmt.Sprint(kv) != "map[a:1 b:1]" || len(applied) != 1 {
		t.Errorf("loads %v, state %v, applied %v", loads, kv, applied)
	}
}

// Every watch ends after one response; Run resumes after the last revision
// it delivered each time, losing and repeating nothing.
func TestResumesAfterInterruptedWatch(t *testing.T) {
	cli, prefix := setup(t)
	from := put(t, cli, prefix+"x", "0")
	m := newMirror(cli, prefix)
	w := &flaky{Watcher: cli.Watcher, breakAfter: 1}
	m.start(t, w, from, m.options())
	var want []string
	var last int64
	for i := 1; i <= 5; i++ {
		last = put(t, cli, prefix+"k"+strconv.Itoa(i), "v")
		want = append(want, fmt.Sprintf("put k%d=v@%d", i, last))
		if i%2 == 1 {
			// Delivered before the next write (one watch each); the
			// others may arrive while the watch is down.
			m.waitRev(t, last, 10*time.Second)
		}
	}
	m.waitRev(t, last, 20*time.Second)
	_, loads, applied := m.snapshot()
	if !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if len(loads) != 0 {
		t.Errorf("reloaded at %v after an interruption without compaction", loads)
	}
	if watches, noLeader := w.counts(); watches < 3 || noLeader != 0 {
		t.Errorf("%d watches, %d without RequireLeader", watches, noLeader)
	}
}

// etcd stops and starts again on the same data; the watch resumes from the
// last revision it saw, without a reload and without losing a change.
func TestResumesAfterEtcdRestart(t *testing.T) {
	cli, prefix := setup(t)
	from := put(t, cli, prefix+"x", "0")
	m := newMirror(cli, prefix)
	m.start(t, cli, from, m.options())
	r1 := put(t, cli, prefix+"a", "1")
	m.waitRev(t, r1, 10*time.Second)

	etcd.Stop()
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	// The first write may well be committed before the watch reconnects.
	r2, err := cli.Put(ctx, prefix+"b", "1")
	if err != nil {
		t.Fatal(err)
	}
	r3, err := cli.Put(ctx, prefix+"a", "2")
	if err != nil {
		t.Fatal(err)
	}
	m.waitRev(t, r3.Header.Revision, 20*time.Second)
	kv, loads, applied := m.snapshot()
	want := []string{
		fmt.Sprintf("put a=1@%d", r1),
		fmt.Sprintf("put b=1@%d", r2.Header.Revision),
		fmt.Sprintf("put a=2@%d", r3.Header.Revision),
	}
	if !slices.Equal(applied, want) || len(loads) != 0 || fmt.Sprint(kv) != "map[a:2 b:1]" {
		t.Errorf("after restart: applied %v (want %v), loads %v, state %v", applied, want, loads, kv)
	}
}

// Watching from a revision that was compacted away: Run reports it
// through Load, then follows from the revision Load read.
func TestReloadsFromCompactedRevision(t *testing.T) {
	cli, prefix := setup(t)
	ctx := testContext(t)
	old := put(t, cli, prefix+"a", "1")
	del(t, cli, prefix+"a")
	cur := put(t, cli, prefix+"b", "1")
	if _, err := cli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	m := newMirror(cli, prefix)
	m.kv = map[string]string{"a": "1"}
	m.start(t, cli, old, m.options())
	m.waitRev(t, cur, 10*time.Second)
	next := put(t, cli, prefix+"c", "1")
	m.waitRev(t, next, 10*time.Second)
	kv, loads, applied := m.snapshot()
	if len(loads) != 1 || loads[0] < cur {
		t.Errorf("loads %v, want one at %d or later", loads, cur)
	}
	if fmt.Sprint(kv) != "map[b:1 c:1]" || !slices.Equal(applied, []string{fmt.Sprintf("put c=1@%d", next)}) {
		t.Errorf("state %v, applied %v", kv, applied)
	}
}

// The watch is cut off while keys change and their revisions are
// compacted; when it is back it cannot resume, so Run reloads and follows
// on from there.
func TestReloadsAfterCompactionWhileCutOff(t *testing.T) {
	cli, prefix := setup(t)
	ctx := testContext(t)
	m := newMirror(cli, prefix)
	w := &flaky{Watcher: cli.Watcher}
	m.start(t, w, 0, m.options())
	m.waitLoads(t, 1, 10*time.Second)
	r1 := put(t, cli, prefix+"a", "1")
	m.waitRev(t, r1, 10*time.Second)

	w.setCut(true)
	del(t, cli, prefix+"a")
	cur := put(t, cli, prefix+"b", "1")
	if _, err := cli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	w.setCut(false)

	m.waitRev(t, cur, 20*time.Second)
	next := put(t, cli, prefix+"c", "1")
	m.waitRev(t, next, 10*time.Second)
	kv, loads, applied := m.snapshot()
	if len(loads) != 2 || loads[1] < cur {
		t.Errorf("loads %v, want the first and one at %d or later", loads, cur)
	}
	want := []string{fmt.Sprintf("put a=1@%d", r1), fmt.Sprintf("put c=1@%d", next)}
	if fmt.Sprint(kv) != "map[b:1 c:1]" || !slices.Equal(applied, want) {
		t.Errorf("state %v, applied %v (want %v)", kv, applied, want)
	}
}

func TestLoadIsRetried(t *testing.T) {
	cli, prefix := setup(t)
	m := newMirror(cli, prefix)
	o := m.options()
	var fails int
	o.Load = func(ctx context.Context) (int64, error) {
		if fails < 2 {
			fails++
			return 0, errors.New("etcd unreachable")
		}
		return m.load(ctx)
	}
	m.start(t, cli, 0, o)
	rev := put(t, cli, prefix+"a", "1")
	m.waitRev(t, rev, 10*time.Second)
	if _, loads, _ := m.snapshot(); len(loads) != 1 || fails != 2 {
		t.Errorf("loads %v after %d failures", loads, fails)
	}
}

func TestStopAndErrors(t *testing.T) {
	cli, prefix := setup(t)
	ctx := testContext(t)
	from := put(t, cli, prefix+"a", "1")
	boom := errors.New("boom")
	tests := []struct {
		name  string
		load  error // from Load (called: from is 0)
		apply error // from Apply
		want  error
	}{
		{"load stops", etcdwatch.ErrStop, nil, nil},
		{"apply stops", nil, etcdwatch.ErrStop, nil},
		{"apply fails", nil, boom, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := from
			if tc.load != nil {
				start = 0
			}
			o := etcdwatch.Options{Prefix: prefix, Logger: testLogger(),
				Load:  func(context.Context) (int64, error) { return from, tc.load },
				Apply: func(context.Context, etcdwatch.Batch) error { return tc.apply },
			}
			done := make(chan error, 1)
			go func() { done <- etcdwatch.Run(ctx, cli, start, o) }()
			put(t, cli, prefix+"a", "2")
			select {
			case err := <-done:
				if err != tc.want {
					t.Fatalf("etcdwatch.Run = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("etcdwatch.Run did not end")
			}
		})
	}

	// A cancelled context ends Run with its error, even while cut off.
	w := &flaky{Watcher: cli.Watcher, cut: true}
	m := newMirror(cli, prefix)
	stop := m.start(t, w, from, m.options())
	time.Sleep(300 * time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("etcdwatch.Run after cancel = %v", err)
	}
}
