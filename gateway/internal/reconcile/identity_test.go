package reconcile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// nullServer is a Server that runs nothing.
type nullServer struct{}

func (nullServer) SetTarget(iscsi.TargetSpec) error    { return nil }
func (nullServer) RemoveTarget(string)                 {}
func (nullServer) SetDiscoveryAuth(*login.Credentials) {}

// identityEnv applies disk-only configurations with a state directory.
type identityEnv struct {
	t    *testing.T
	dir  string
	logs *bytes.Buffer
}

func (e *identityEnv) reconciler() *Reconciler {
	r := New(Options{Server: nullServer{}, StateDir: e.dir,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Open:   func(config.Disk) (rbdbackend.Image, error) { return rbdbackend.NewMemoryImage(1 << 20), nil }})
	e.t.Cleanup(r.Close)
	return r
}

// apply applies the disks and returns each one's WWN.
func (e *identityEnv) apply(r *Reconciler, disks ...config.Disk) map[string]string {
	e.t.Helper()
	cfg := &config.Config{Disks: disks}
	if err := r.Apply(cfg); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	out := map[string]string{}
	for _, d := range disks {
		out[d.Name] = r.disks[d.Name].lu.WWN()
	}
	return out
}

func memDisk(name, wwn string) config.Disk {
	return config.Disk{Name: name, Backend: "memory", Size: 1 << 20, BlockSize: 512, WWN: wwn}
}

func TestDefaultWWNsRecorded(t *testing.T) {
	e := &identityEnv{t: t, dir: t.TempDir(), logs: &bytes.Buffer{}}
	first := e.apply(e.reconciler(), memDisk("vm1", ""), memDisk("vm2", ""), memDisk("pinned", "6001405aabbccdd0"))
	for _, name := range []string{"vm1", "vm2"} {
		w := first[name]
		if len(w) != 16 || !config.IsLowerHex(w) {
			t.Fatalf("%s: WWN %q", name, w)
		}
		if w == NameDerivedWWN(name) {
			t.Errorf("%s: WWN derived from the name in a fresh state directory", name)
		}
	}
	if first["vm1"] == first["vm2"] {
		t.Error("two disks got one WWN")
	}
	if first["pinned"] != "6001405aabbccdd0" {
		t.Errorf("a WWN given in the file became %s", first["pinned"])
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, wwnFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "pinned") {
		t.Errorf("a disk with its own WWN was recorded: %s", raw)
	}
	// A restart (a new reconciler on the same directory) finds them, and
	// a disk added later gets a new one.
	again := e.apply(e.reconciler(), memDisk("vm2", ""), memDisk("vm1", ""), memDisk("vm3", ""))
	for _, name := range []string{"vm1", "vm2"} {
		if again[name] != first[name] {
			t.Errorf("%s: WWN %s after a restart, was %s", name, again[name], first[name])
		}
	}
	if again["vm3"] == NameDerivedWWN("vm3") || again["vm3"] == first["vm1"] || again["vm3"] == first["vm2"] {
		t.Errorf("vm3: WWN %s", again["vm3"])
	}
}

// A state directory an earlier gateway used (it holds persistent
// reservations) keeps the name-derived WWNs of the disks of the first
// configuration; disks added afterwards get random ones.
func TestDefaultWWNsUpgrade(t *testing.T) {
	e := &identityEnv{t: t, dir: t.TempDir(), logs: &bytes.Buffer{}}
	if err := os.Mkdir(filepath.Join(e.dir, "pr"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := e.reconciler()
	got := e.apply(r, memDisk("old", ""))
	if got["old"] != NameDerivedWWN("old") {
		t.Errorf("upgraded disk: WWN %s, want the name-derived %s", got["old"], NameDerivedWWN("old"))
	}
	got = e.apply(r, memDisk("old", ""), memDisk("new", ""))
	if got["new"] == NameDerivedWWN("new") {
		t.Error("a disk added after the upgrade got a name-derived WWN")
	}
	got = e.apply(e.reconciler(), memDisk("old", ""), memDisk("new", ""))
	if got["old"] != NameDerivedWWN("old") {
		t.Errorf("after a restart the upgraded disk has WWN %s", got["old"])
	}
}

func TestDefaultWWNWithoutStateDir(t *testing.T) {
	e := &identityEnv{t: t, logs: &bytes.Buffer{}}
	got := e.apply(e.reconciler(), memDisk("vm1", ""))
	if got["vm1"] != NameDerivedWWN("vm1") {
		t.Errorf("WWN %s, want the name-derived %s", got["vm1"], NameDerivedWWN("vm1"))
	}
	if !strings.Contains(e.logs.String(), "disk has no wwn and the gateway no state directory") {
		t.Errorf("no warning: %s", e.logs)
	}
}

func TestDefaultWWNRecordDamaged(t *testing.T) {
	e := &identityEnv{t: t, dir: t.TempDir(), logs: &bytes.Buffer{}}
	if err := os.WriteFile(filepath.Join(e.dir, wwnFile), []byte(`{"disks": {"vm1": "XYZ"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.reconciler()
	err := r.Apply(&config.Config{Disks: []config.Disk{memDisk("vm1", ""), memDisk("pinned", "6001405aabbccdd0")}})
	if err == nil || !strings.Contains(err.Error(), "vm1") {
		t.Fatalf("apply: %v", err)
	}
	if r.disks["vm1"] != nil || r.disks["pinned"] == nil {
		t.Error("a damaged record must keep the disks without a WWN closed, and only those")
	}
}
