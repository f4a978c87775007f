package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	dir, err := os.MkdirTemp("", "tokens-etcd")
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

// testPrefix is a cluster prefix of the test's own, new on every run (the
// etcd server outlives -count repetitions).
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("/test/%s/%d/", t.Name(), runs.Add(1))
}

// newStore returns a store under a prefix of the test's own.
func newStore(t *testing.T) (*Store, *clientv3.Client) {
	cli := newClient(t)
	return New(cli, testPrefix(t)), cli
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateVerifyRevoke(t *testing.T) {
	s, cli := newStore(t)
	ctx := testCtx(t)
	tok, info, err := s.Create(ctx, "ci", RoleOperator, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "ci" || info.Role != RoleOperator || info.Expires != nil || !ValidID(info.ID) || info.Created.IsZero() {
		t.Fatalf("info %+v", info)
	}
	if id, _ := ParseID(tok); id != info.ID {
		t.Fatalf("token %q does not carry id %s", tok, info.ID)
	}
	got, err := s.Verify(ctx, tok)
	if err != nil || got != info {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, info)
	}

	// The stored value has the hash, never the secret.
	resp, err := cli.Get(ctx, s.prefix+"tokens/"+info.ID)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("stored key: %v, %v", resp, err)
	}
	val := string(resp.Kvs[0].Value)
	if strings.Contains(val, tok[19:]) {
		t.Fatalf("the secret is stored: %s", val)
	}
	var stored map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &stored); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "name", "role", "created", "sha256"} {
		if _, ok := stored[f]; !ok {
			t.Errorf("stored value lacks %q: %s", f, val)
		}
	}
	if h, _ := stored["sha256"].(string); len(h) != 64 {
		t.Errorf("sha256 %q", h)
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0] != info {
		t.Fatalf("List = %+v, %v", list, err)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), "sha256") {
		t.Fatalf("List exposes the hash: %s", b)
	}

	if err := s.Revoke(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify after revoke = %v", err)
	}
	if err := s.Revoke(ctx, info.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Revoke = %v", err)
	}
	for _, id := range []string{"", "../x", "0123456789ab"} {
		if err := s.Revoke(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(%q) = %v", id, err)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List after revoke = %+v, %v", list, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	tok, info, err := s.Create(ctx, "viewer-1", RoleViewer, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := New(s.cli, testPrefix(t))
	otherTok, _, err := other.Create(ctx, "elsewhere", RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, secret := generate()
	unknownID, _ := generate()
	tests := []struct{ name, tok string }{
		{"empty", ""},
		{"garbage", "hello"},
		{"wrong secret", format(info.ID, secret)},
		{"flipped secret character", tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:]},
		{"unknown id", format(unknownID, secret)},
		{"token of another cluster prefix", otherTok},
		{"bearer prefix left on", "Bearer " + tok},
		{"whitespace", tok + " "},
	}
	for _, tc := range tests {
		if _, err := s.Verify(ctx, tc.tok); err != ErrInvalidToken {
			t.Errorf("%s: Verify = %v, want exactly ErrInvalidToken", tc.name, err)
		}
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("the good token: %v", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestExpiry(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	tok, info, err := s.Create(ctx, "short", RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if info.Expires == nil || !info.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("expires %v", info.Expires)
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := s.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	// An expired token with a wrong secret is still just invalid.
	_, secret := generate()
	if _, err := s.Verify(ctx, format(info.ID, secret)); err != ErrInvalidToken {
		t.Fatalf("expired id, wrong secret: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || !list[0].Expired(now) {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestCreateRejects(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	tests := []struct {
		name string
		role Role
		ttl  time.Duration
	}{
		{"", RoleAdmin, 0},
		{"bad name", RoleAdmin, 0},
		{"ok", "root", 0},
		{"ok", "", 0},
		{"ok", RoleViewer, -time.Second},
		{"ok", RoleViewer, time.Millisecond},
	}
	for _, tc := range tests {
		if _, _, err := s.Create(ctx, tc.name, tc.role, tc.ttl); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q, %q, %v) = %v, want ErrInvalid", tc.name, tc.role, tc.ttl, err)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("rejected creates stored tokens: %+v", list)
	}
}

func TestBootstrap(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	prefix := testPrefix(t)
	dir := t.TempDir()

	// Two gateways start together, each with its own client and file.
	var wg sync.WaitGroup
	created := make([]bool, 4)
	errs := make([]error, 4)
	paths := make([]string, 4)
	for i := range created {
		paths[i] = filepath.Join(dir, fmt.Sprintf("gw%d", i), "secrets", "admin-token")
		c := cli
		if i%2 == 1 {
			c = newClient(t)
		}
		wg.Go(func() { created[i], errs[i] = New(c, prefix).Bootstrap(ctx, paths[i]) })
	}
	wg.Wait()
	winner := -1
	for i := range created {
		if errs[i] != nil {
			t.Fatalf("Bootstrap %d: %v", i, errs[i])
		}
		if created[i] {
			if winner >= 0 {
				t.Fatalf("Bootstraps %d and %d both created a token", winner, i)
			}
			winner = i
		} else if _, err := os.Stat(paths[i]); !os.IsNotExist(err) {
			t.Errorf("losing Bootstrap %d left a file: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Bootstrap created a token")
	}
	s := New(cli, prefix)
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != BootstrapName || list[0].Role != RoleAdmin {
		t.Fatalf("List = %+v, %v", list, err)
	}

	fi, err := os.Stat(paths[winner])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(paths[winner]))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("token directory mode %v, %v; want 0700", di.Mode().Perm(), err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(paths[winner]), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	b, err := os.ReadFile(paths[winner])
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Verify(ctx, strings.TrimSpace(string(b)))
	if err != nil || info.ID != list[0].ID || info.Role != RoleAdmin {
		t.Fatalf("Verify(bootstrap token) = %+v, %v", info, err)
	}

	// Once per cluster: not again after the token is revoked.
	if err := s.Revoke(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again")
	if ok, err := s.Bootstrap(ctx, again); ok || err != nil {
		t.Fatalf("second Bootstrap = %v, %v", ok, err)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Fatalf("second Bootstrap wrote a file: %v", err)
	}
}

func TestBootstrapSkipsWhenTokensExist(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	if _, _, err := s.Create(ctx, "made-by-hand", RoleAdmin, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if ok, err := s.Bootstrap(ctx, path); ok || err != nil {
		t.Fatalf("Bootstrap = %v, %v", ok, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Bootstrap wrote a file: %v", err)
	}
	if list, _ := s.List(ctx); len(list) != 1 {
		t.Fatalf("tokens: %+v", list)
	}
}

func TestBootstrapUnwritablePath(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The directory cannot be made: nothing may be created in etcd.
	if ok, err := s.Bootstrap(ctx, filepath.Join(blocker, "sub", "token")); ok || err == nil {
		t.Fatalf("Bootstrap = %v, %v; want an error", ok, err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("a token nobody holds was created: %+v", list)
	}
	path := filepath.Join(t.TempDir(), "token")
	if ok, err := s.Bootstrap(ctx, path); !ok || err != nil {
		t.Fatalf("Bootstrap after fixing the path = %v, %v", ok, err)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "tok")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, "new"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(b) != "new\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %q mode %v", b, fi.Mode().Perm())
	}
}
