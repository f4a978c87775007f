// Package e2e runs the gwcli binary against real gateway daemons serving
// the REST API, with etcd and a Ceph cluster behind them: the commands of
// ceph-iscsi's walkthrough, exit codes, JSON output, dry runs, a real
// initiator logged in.
//
// Two ways to run it:
//
//	go test ./gwcli/e2e/                starts etcd (/usr/bin/etcd), Ceph ($CEPH_CONF, or
//	                                    deploy/microceph.sh) and two gateways (gw-a, gw-b);
//	                                    skips when etcd or Ceph are not installed
//	GWCLI_E2E_URL=http://127.0.0.1:5000 GWCLI_E2E_TOKEN=... go test ./gwcli/e2e/
//	                                    against a running cluster (make demo): it makes its
//	                                    own target and disks (random names) and removes them
//
// The gateways it starts take their API ports from 5080-5089 and their
// iSCSI portals from 3380-3389 (GWCLI_E2E_API_PORTS, GWCLI_E2E_ISCSI_PORTS:
// other ranges as "LO-HI"). GWCLI_E2E_RBDGW names a daemon binary built
// already (go build -tags pacific ./gateway/cmd/rbdgw) instead of building
// one. GWCLI_E2E_KEEP=1 keeps the logs.
//
// -short skips it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

var env struct {
	root, bin, gwcli string
	url, token       string
	urls             []string // the APIs of the gateways this test started
	cephConf         string
	own              bool     // this test started the cluster
	gateways         []string // names of the cluster's gateways
	portals          []string // their portals, when this test made them
	procs            []*exec.Cmd
	cephDir          string
	skip             string
}

func TestMain(m *testing.M) {
	code := 0
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "gwcli e2e:", err)
		code = 1
	} else {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

func setup() error {
	var err error
	if env.root, err = filepath.Abs("../.."); err != nil {
		return err
	}
	if env.bin, err = os.MkdirTemp("", "gwcli-e2e"); err != nil {
		return err
	}
	for _, a := range os.Args {
		if a == "-test.short=true" {
			env.skip = "-short"
			return nil
		}
	}
	if err := goBuild("gwcli", "./gwcli/cmd/gwcli", ""); err != nil {
		return err
	}
	env.gwcli = filepath.Join(env.bin, "gwcli")
	if u := os.Getenv("GWCLI_E2E_URL"); u != "" {
		env.url, env.token = strings.TrimRight(u, "/"), os.Getenv("GWCLI_E2E_TOKEN")
		return listGateways()
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		env.skip = "etcd not installed (apt-get install etcd-server), and GWCLI_E2E_URL not set"
		return nil
	}
	env.cephConf = os.Getenv("CEPH_CONF")
	if env.cephConf == "" {
		if _, err := exec.LookPath("ceph-osd"); err != nil {
			env.skip = "no CEPH_CONF and no Ceph daemons to start one (deploy/install-deps.sh)"
			return nil
		}
	}
	if bin := os.Getenv("GWCLI_E2E_RBDGW"); bin != "" {
		if err := os.Symlink(bin, filepath.Join(env.bin, "rbdgw")); err != nil {
			return err
		}
	} else if err := goBuild("rbdgw", "./gateway/cmd/rbdgw", "pacific"); err != nil {
		return err
	}
	return startCluster()
}

func goBuild(out, pkg, tags string) error {
	args := []string{"build", "-o", filepath.Join(env.bin, out)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = env.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// picked are the ports pickPort handed out.
var picked = map[int]bool{}

// pickPort returns a free port of the range the environment variable
// names ("LO-HI"), or of lo-hi.
func pickPort(envVar string, lo, hi int) (int, error) {
	if r := os.Getenv(envVar); r != "" {
		if _, err := fmt.Sscanf(r, "%d-%d", &lo, &hi); err != nil {
			return 0, fmt.Errorf("%s=%q: expected LO-HI", envVar, r)
		}
	}
	for p := lo; p <= hi; p++ {
		if picked[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		picked[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d (%s)", lo, hi, envVar)
}

func spawn(log string, name string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	env.procs = append(env.procs, cmd)
	return cmd, nil
}

// startCluster starts etcd, Ceph (unless CEPH_CONF names one) and two
// gateways with their APIs.
func startCluster() error {
	env.own = true
	client, peer := freePort(), freePort()
	if _, err := spawn(filepath.Join(env.bin, "etcd.log"), "etcd", "--name", "e2e", "--data-dir", filepath.Join(env.bin, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client), "--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("e2e=http://127.0.0.1:%d", peer)); err != nil {
		return err
	}
	if env.cephConf == "" {
		env.cephDir = filepath.Join(env.bin, "ceph")
		cmd := exec.Command(filepath.Join(env.root, "deploy/microceph.sh"), "start")
		cmd.Env = append(os.Environ(), "CEPH_DIR="+env.cephDir, "CEPH_MEMSTORE_GIB=2")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("microceph: %w", err)
		}
		env.cephConf = filepath.Join(env.cephDir, "ceph.conf")
		_ = out
	}
	tokenFile := filepath.Join(env.bin, "api-token")
	var urls []string
	for _, name := range []string{"gw-a", "gw-b"} {
		apiPort, err := pickPort("GWCLI_E2E_API_PORTS", 5080, 5089)
		if err != nil {
			return err
		}
		iscsiPort, err := pickPort("GWCLI_E2E_ISCSI_PORTS", 3380, 3389)
		if err != nil {
			return err
		}
		api := fmt.Sprintf("127.0.0.1:%d", apiPort)
		urls = append(urls, "http://"+api)
		if _, err := spawn(filepath.Join(env.bin, name+".log"), filepath.Join(env.bin, "rbdgw"), "-etcd", fmt.Sprintf("127.0.0.1:%d", client),
			"-etcd-prefix", "/gwcli-e2e/", "-gateway", name, "-ceph-conf", env.cephConf, "-lease-ttl", "5s",
			"-api", api, "-api-token-file", tokenFile); err != nil {
			return err
		}
		env.gateways = append(env.gateways, name)
		env.portals = append(env.portals, fmt.Sprintf("127.0.0.1:%d", iscsiPort))
	}
	env.url, env.urls = urls[0], urls
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range urls {
		for {
			resp, err := http.Get(u + "/api/v1/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the API at %s did not come up (logs in %s)", u, env.bin)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	env.token = strings.TrimSpace(string(b))
	return nil
}

// listGateways reads the names of a running cluster's gateways.
func listGateways() error {
	req, _ := http.NewRequest(http.MethodGet, env.url+"/api/v1/gateways", nil)
	req.Header.Set("Authorization", "Bearer "+env.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var gws []model.Gateway
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s/api/v1/gateways: %s", env.url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&gws); err != nil {
		return err
	}
	for _, g := range gws {
		env.gateways = append(env.gateways, g.Name)
	}
	return nil
}

func teardown() {
	for i := len(env.procs) - 1; i >= 0; i-- {
		p := env.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if env.cephDir != "" {
		cmd := exec.Command(filepath.Join(env.root, "deploy/microceph.sh"), "stop")
		cmd.Env = append(os.Environ(), "CEPH_DIR="+env.cephDir)
		_ = cmd.Run()
	}
	if env.bin != "" && os.Getenv("GWCLI_E2E_KEEP") == "" {
		os.RemoveAll(env.bin)
	}
}

// gw runs gwcli in batch mode.
func gw(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.gwcli, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "RBDGW_API_URL="+env.url, "RBDGW_API_TOKEN="+env.token, "HOME="+home, "XDG_CONFIG_HOME="+home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gwcli %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := gw(t, args...)
	if code != 0 {
		t.Fatalf("gwcli %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func want(t *testing.T, code int, msg string, args ...string) {
	t.Helper()
	out, errs, got := gw(t, args...)
	if got != code || !strings.Contains(errs, msg) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("gwcli %s: exit %d %q %q, want exit %d and one line with %q", strings.Join(args, " "), got, out, errs, code, msg)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestWalkthrough(t *testing.T) {
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
	sfx := fmt.Sprintf("%04x", rand.IntN(1<<16))
	iqn := "iqn.2003-01.com.redhat.iscsi-gw:e2e-" + sfx
	host := "iqn.1994-05.com.redhat:e2e-client-" + sfx
	host2 := "iqn.1994-05.com.redhat:e2e-other-" + sfx
	d1, d2 := "rbd/e2e_"+sfx+"_1", "rbd/e2e_"+sfx+"_2"
	tp := "/iscsi-targets/" + iqn
	t.Cleanup(func() {
		gw(t, "/iscsi-targets", "delete", iqn)
		gw(t, "/disks", "delete", d1)
		gw(t, "/disks", "delete", d2)
	})

	out := ok(t, "ls", "/")
	if !contains(out, "o- iscsi-targets ") || !contains(out, "o- cluster ") {
		t.Fatalf("ls /:\n%s", out)
	}
	if len(env.gateways) < 2 {
		t.Skipf("the cluster at %s has %d gateways; the walkthrough needs two", env.url, len(env.gateways))
	}

	// ceph-iscsi's walkthrough, as a script (cd carries over).
	script := fmt.Sprintf(`# gwcli e2e
cd /iscsi-targets
create %[1]s
cd %[1]s/gateways
create %[2]s %[3]s
create %[4]s %[5]s
cd /disks
create pool=rbd image=%[6]s size=64M
create %[7]s 32M
cd %[8]s/hosts
create %[9]s
disk add %[10]s
`, iqn, env.gateways[0], portal(0), env.gateways[1], portal(1), strings.TrimPrefix(d1, "rbd/"), d2, tp, host, d1)
	f := filepath.Join(t.TempDir(), "walkthrough.gw")
	os.WriteFile(f, []byte(script), 0o600)
	ok(t, "--wait", "-f", f)

	out = ok(t, "ls", tp)
	for _, w := range []string{"[Up: 2/2, Portals: 2]", "o- " + d1 + " ", "Lun: 0]", "o- " + host + " ", "Disks: 1(64M)]", "o- lun0 "} {
		if !contains(out, w) {
			t.Errorf("ls %s lacks %q:\n%s", tp, w, out)
		}
	}

	// A real initiator logs in; the host shows LOGGED-IN.
	if _, err := exec.LookPath("iscsi-perf"); err == nil && env.own {
		portal := strings.Split(portal(0), ",")[0]
		perf := exec.Command("iscsi-perf", "-i", host, "-t", "6", "iscsi://"+portal+"/"+iqn+"/0")
		if err := perf.Start(); err != nil {
			t.Fatal(err)
		}
		// Only the login matters here. Left running, iscsi-perf would
		// try forever to log in again once the test deletes the target.
		defer func() {
			perf.Process.Kill()
			perf.Wait()
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out = ok(t, tp+"/hosts", "ls")
			if contains(out, "[LOGGED-IN ("+env.gateways[0]+")") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("host never logged in:\n%s", out)
			}
			time.Sleep(300 * time.Millisecond)
		}
		info := ok(t, tp+"/hosts/"+host, "info")
		if !contains(info, "logged in:  "+env.gateways[0]) || !contains(info, " via "+env.gateways[0]) {
			t.Errorf("host info:\n%s", info)
		}
		if s := ok(t, tp, "sessions"); !contains(s, host) {
			t.Errorf("sessions:\n%s", s)
		}
	}

	// Disk commands.
	ok(t, "/disks", "resize", d1, "96M")
	var disk model.Disk
	if err := json.Unmarshal([]byte(ok(t, "-o", "json", "/disks", "info", d1)), &disk); err != nil || disk.Size != 96<<20 || disk.Mapping == nil {
		t.Errorf("disk after resize: %+v %v", disk, err)
	}
	ok(t, "/disks/"+d1, "snapshot", "create", "s1")
	if out := ok(t, "/disks/"+d1, "snapshot", "list"); !contains(out, "s1") {
		t.Errorf("snapshots: %s", out)
	}
	ok(t, "/disks/"+d1, "snapshot", "delete", "s1")

	// Exit codes and one-line errors.
	want(t, 3, "already exists", "/disks", "create", d1, "64M")
	want(t, 3, "mapped", "/disks", "delete", d1)
	want(t, 2, `size "64X"`, "/disks", "create", "rbd/x"+sfx, "64X")
	want(t, 2, "no such path", "/iscsi-targets/"+iqn+"/nope", "ls")
	want(t, 4, "does not exist", "ls", "/iscsi-targets/iqn.2003-01.com.example:missing-"+sfx)
	want(t, 3, "", tp+"/gateways", "create", env.gateways[0], "10.99.99.99")

	// Dry run changes nothing.
	out = ok(t, "--dry-run", "/disks", "delete", d2)
	if !contains(out, "dry run, nothing changed") {
		t.Errorf("dry run: %s", out)
	}
	ok(t, "/disks/"+d2, "info")

	// Host groups, CHAP, host disk add through the group.
	ok(t, tp+"/hosts", "create", host2)
	ok(t, tp+"/host-groups", "create", "g"+sfx)
	ok(t, tp+"/host-groups/g"+sfx, "host", "add", host2)
	ok(t, "--wait", tp+"/host-groups/g"+sfx, "disk", "add", d2)
	var h model.Host
	if err := json.Unmarshal([]byte(ok(t, "-o", "json", tp+"/hosts/"+host2, "info")), &h); err != nil || h.Group != "g"+sfx || len(h.LUNs) != 1 {
		t.Errorf("grouped host: %+v %v", h, err)
	}
	want(t, 3, "host group", tp+"/hosts/"+host2, "disk", "add", d1)
	ok(t, tp+"/hosts/"+host, "auth", "username=alice", "password=alicesecret1")
	if out := ok(t, tp+"/hosts/"+host, "info"); !contains(out, "CHAP") || !contains(out, "luns:       0") {
		t.Errorf("host after auth:\n%s", out)
	}
	ok(t, tp+"/hosts", "auth", "nochap")
	ok(t, tp+"/host-groups/g"+sfx, "host", "remove", host2)
	ok(t, tp+"/host-groups", "delete", "g"+sfx)

	// Tear down with the commands users would: unmap, delete.
	ok(t, tp+"/hosts/"+host, "disk", "remove", d1)
	ok(t, tp+"/hosts", "delete", host)
	ok(t, tp+"/hosts/"+host2, "disk", "remove", d2)
	ok(t, tp+"/disks", "delete", d1)
	ok(t, tp+"/disks", "delete", d2)
	ok(t, "/iscsi-targets", "delete", iqn)
	ok(t, "/disks", "detach", d2)
	ok(t, "/disks", "attach", d2)
	ok(t, "/disks", "delete", d2)
	ok(t, "/disks", "delete", d1)
	if out := ok(t, "ls", "/disks"); contains(out, "e2e_"+sfx) {
		t.Errorf("disks left:\n%s", out)
	}
	if out := ok(t, "export"); !contains(out, `"version"`) {
		t.Errorf("export: %s", out)
	}
}

// portal is the address argument of gateway i: its portal when this test
// registered the gateways, nothing (join as registered) otherwise.
func portal(i int) string {
	if env.own {
		return env.portals[i]
	}
	return ""
}
