package audit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

// etcdEndpoint is the one etcd server the tests of this package share;
// each test works under its own prefix. Empty when there is none.
var etcdEndpoint string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "audit-etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := clustertest.StartEtcd(dir)
	switch {
	case errors.Is(err, clustertest.ErrNoEtcd):
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Stop()
	etcdEndpoint = e.Endpoint()
	return m.Run()
}

func newClient(t *testing.T) *clientv3.Client {
	t.Helper()
	if etcdEndpoint == "" {
		t.Skip("skipping: needs a real etcd server (etcd-server not installed, or -short)")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcdEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var runs atomic.Int64

// testPrefix is a cluster prefix of the test's own, new on every run.
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("/test/%s/%d/", t.Name(), runs.Add(1))
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func entry(i int) Entry {
	return Entry{TokenID: "0123456789ab", TokenName: "ci", Role: "operator", Remote: "192.0.2.1",
		Method: "PUT", Path: "/api/v1/disks/rbd/d" + strconv.Itoa(i), Status: 200, Revision: int64(100 + i)}
}

// pages lists the whole log page by page and returns the paths in order.
func pages(t *testing.T, ctx context.Context, l *Log, limit int) []string {
	t.Helper()
	var paths []string
	before := ""
	for n := 0; ; n++ {
		es, next, err := l.List(ctx, limit, before)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > limit || (next != "" && len(es) != limit) {
			t.Fatalf("page %d: %d entries, next %q (limit %d)", n, len(es), next, limit)
		}
		for _, e := range es {
			paths = append(paths, strings.TrimPrefix(e.Path, "/api/v1/disks/rbd/"))
		}
		if next == "" {
			return paths
		}
		if n > 1000 {
			t.Fatal("paging does not end")
		}
		before = next
	}
}

func seqNames(from, to int) []string { // newest first: to down to from
	var out []string
	for i := to; i >= from; i-- {
		out = append(out, "d"+strconv.Itoa(i))
	}
	return out
}

func TestRecordList(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	var logBuf bytes.Buffer
	l := New(cli, testPrefix(t), Options{Logger: slog.New(slog.NewJSONHandler(&logBuf, nil))})

	if es, next, err := l.List(ctx, 10, ""); err != nil || len(es) != 0 || next != "" {
		t.Fatalf("empty log: %v, %q, %v", es, next, err)
	}
	for i := 1; i <= 7; i++ {
		e := entry(i)
		if i == 3 {
			e.Body = `{"chap":{"user":"u","secret":"abcdefghijkl"}}`
			e.Code = "conflict"
			e.Status = 409
			e.Revision = 0
		}
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	es, next, err := l.List(ctx, 0, "")
	if err != nil || len(es) != 7 || next != "" {
		t.Fatalf("List = %d entries, %q, %v", len(es), next, err)
	}
	if es[0].Path != "/api/v1/disks/rbd/d7" || es[6].Path != "/api/v1/disks/rbd/d1" {
		t.Fatalf("not newest first: %s ... %s", es[0].Path, es[6].Path)
	}
	e3 := es[4]
	if e3.Body != `{"chap":{"user":"u","secret":"***"}}` || e3.Status != 409 || e3.Code != "conflict" || e3.Revision != 0 {
		t.Fatalf("entry 3: %+v", e3)
	}
	if e := es[0]; e.Time.IsZero() || e.Time.Location() != time.UTC || e.TokenID != "0123456789ab" ||
		e.TokenName != "ci" || e.Role != "operator" || e.Remote != "192.0.2.1" || e.Method != "PUT" || e.Revision != 107 {
		t.Fatalf("entry 7: %+v", e)
	}

	for _, limit := range []int{1, 2, 3, 6, 7, 8} {
		if got, want := pages(t, ctx, l, limit), seqNames(1, 7); !equal(got, want) {
			t.Errorf("paging by %d: %v, want %v", limit, got, want)
		}
	}
	for _, bad := range []string{"x", "-1", "0", "1.5"} {
		if _, _, err := l.List(ctx, 2, bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("List(before=%q) = %v", bad, err)
		}
	}
	if es, next, err := l.List(ctx, 5, "1"); err != nil || len(es) != 0 || next != "" {
		t.Fatalf("before the first: %v, %q, %v", es, next, err)
	}

	logs := logBuf.String()
	if n := strings.Count(logs, `"component":"audit"`); n != 7 {
		t.Errorf("%d audit log lines, want 7:\n%s", n, logs)
	}
	if strings.Contains(logs, "abcdefghijkl") {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
	if !strings.Contains(logs, `"path":"/api/v1/disks/rbd/d3"`) || !strings.Contains(logs, `"code":"conflict"`) {
		t.Errorf("log lines lack fields:\n%s", logs)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestRecordMasksAndCutsBody(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	l := New(cli, testPrefix(t), Options{Logger: quiet(), MaxBody: 64})
	e := entry(1)
	e.Body = `{"password":"pppppppppppp","note":"` + strings.Repeat("é", 100) + `"}`
	if err := l.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	e = entry(2)
	e.Body = `password: hunter2hunter2` // YAML: withheld, not stored as is
	if err := l.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	es, _, err := l.List(ctx, 10, "")
	if err != nil || len(es) != 2 {
		t.Fatal(es, err)
	}
	if b := es[0].Body; strings.Contains(b, "hunter2") || !strings.Contains(b, "withheld") {
		t.Errorf("YAML body stored as %q", b)
	}
	b := es[1].Body
	if !strings.HasPrefix(b, `{"password":"***","note":"éé`) || !strings.Contains(b, "...(cut, ") || strings.Contains(b, "pppp") {
		t.Errorf("long body stored as %q", b)
	}
	if i := strings.Index(b, "...(cut"); i > 64 || !strings.ContainsRune(b[:i], 'é') || strings.ContainsRune(b[:i], '\uFFFD') {
		t.Errorf("cut at %d: %q", i, b)
	}
}

func TestRetention(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	prefix := testPrefix(t)
	count := func() int64 {
		resp, err := cli.Get(ctx, prefix+"audit/0", clientv3.WithRange(prefix+"audit/:"), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	l := New(cli, prefix, Options{Logger: quiet(), Keep: 20}) // trims every 2
	maxSeen := int64(0)
	for i := 1; i <= 45; i++ {
		if err := l.Record(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
		maxSeen = max(maxSeen, count())
	}
	if maxSeen > 21 {
		t.Errorf("up to %d entries stored, want at most Keep+batch-1 = 21", maxSeen)
	}
	if n := count(); n != 21 { // 45 is odd: trimmed at 44 to 20, plus one
		t.Errorf("%d entries stored after 45 records", n)
	}
	if got, want := pages(t, ctx, l, 4), seqNames(25, 45); !equal(got, want) {
		t.Errorf("after trimming: %v, want %v", got, want)
	}
	// A cursor into the trimmed part finds nothing older.
	if es, next, err := l.List(ctx, 4, "10"); err != nil || len(es) != 0 || next != "" {
		t.Errorf("below the trimmed part: %v, %q, %v", es, next, err)
	}
}

func TestListAcrossGaps(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	prefix := testPrefix(t)
	l := New(cli, prefix, Options{Logger: quiet()})
	for i := 1; i <= 30; i++ {
		if err := l.Record(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Someone deletes entries 10-24 and 5 by hand.
	if _, err := cli.Delete(ctx, l.entryKey(10), clientv3.WithRange(l.entryKey(25))); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, l.entryKey(5)); err != nil {
		t.Fatal(err)
	}
	want := append(seqNames(25, 30), seqNames(6, 9)...)
	want = append(want, seqNames(1, 4)...)
	for _, limit := range []int{1, 3, 5, 100} {
		if got := pages(t, ctx, l, limit); !equal(got, want) {
			t.Errorf("paging by %d: %v, want %v", limit, got, want)
		}
	}
}

func TestConcurrentRecorders(t *testing.T) {
	ctx := testCtx(t)
	prefix := testPrefix(t)
	// Three gateways, each with its own client, and two requests at a time
	// on each.
	var logs []*Log
	for range 3 {
		logs = append(logs, New(newClient(t), prefix, Options{Logger: quiet()}))
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g, l := range logs {
		for w := range 2 {
			wg.Go(func() {
				for i := range 10 {
					if err := l.Record(ctx, entry(g*100+w*10+i)); err != nil {
						t.Error(err)
						failed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.FailNow()
	}
	es, next, err := logs[0].List(ctx, 1000, "")
	if err != nil || len(es) != 60 || next != "" {
		t.Fatalf("List = %d entries, %q, %v", len(es), next, err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Path] {
			t.Fatalf("entry %s stored twice", e.Path)
		}
		seen[e.Path] = true
	}
	resp, err := logs[0].cli.Get(ctx, prefix+"audit/seq")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "60" {
		t.Fatalf("counter: %v, %v", resp, err)
	}
}

func TestRecordFailsWithoutEtcd(t *testing.T) {
	cli := newClient(t)
	var logBuf bytes.Buffer
	l := New(cli, testPrefix(t), Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Record(ctx, entry(1)); err == nil {
		t.Fatal("Record with a cancelled context succeeded")
	}
	if !strings.Contains(logBuf.String(), "component=audit") || !strings.Contains(logBuf.String(), "not stored") {
		t.Fatalf("no log line for the entry etcd did not take:\n%s", logBuf.String())
	}
}
