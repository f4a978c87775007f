package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCluster is one test's gateways, target and disks, under an etcd
// prefix of the test's own.
type testCluster struct {
	t      *testing.T
	prefix string
	iqn    string
	gws    []*gateway
	images []string
}

// gateway is one daemon process.
type gateway struct {
	t      *testing.T
	name   string
	portal string
	args   []string
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// newCluster defines n gateways (gw-a, gw-b, ...), a target they all
// serve (any initiator admitted), a 1 GiB RBD disk as LUN 0, starts the
// gateways and waits until they are live and the disk has an owner.
func newCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	need(t)
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	c := &testCluster{t: t, prefix: "/" + name + fmt.Sprintf("-%04x/", rand.IntN(1<<16)), iqn: "iqn.2024-01.io.rbdgw:" + name}
	t.Cleanup(c.cleanup)
	var names []string
	for i := range n {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		g := &gateway{t: t, name: "gw-" + string(rune('a'+i)), portal: fmt.Sprintf("127.0.0.1:%d", port)}
		g.log = filepath.Join(t.TempDir(), g.name+".log")
		g.args = append(etcdArgs(), "-etcd-prefix", c.prefix, "-gateway", g.name,
			"-ceph-conf", env.cephConf, "-lease-ttl", "5s", "-log-level", "debug", "-api", "off")
		c.gws = append(c.gws, g)
		names = append(names, g.name)
		c.admin("gateway", "put", g.name, "-portal", g.portal)
	}
	disk := c.addDisk("1G")
	targetArgs := []string{"target", "put", c.iqn, "-allow-any-initiator"}
	for _, g := range names {
		targetArgs = append(targetArgs, "-gateway", g)
	}
	c.admin(targetArgs...)
	c.admin("lun", "put", c.iqn, "0", disk)
	for _, g := range c.gws {
		g.start()
	}
	c.waitReady()
	return c
}

// addDisk defines a new RBD disk (a fresh image) and returns its id.
func (c *testCluster) addDisk(size string) string {
	c.t.Helper()
	image := fmt.Sprintf("%s%d-%04x", strings.Trim(c.prefix, "/"), len(c.images), rand.IntN(1<<16))
	c.images = append(c.images, image)
	c.admin("disk", "put", "rbd/"+image, "-size", size)
	return "rbd/" + image
}

// waitReady waits until every running gateway is live, every mapped disk
// has an owner, and every portal accepts connections.
func (c *testCluster) waitReady() {
	c.t.Helper()
	args := []string{"-timeout", "60s", "wait", "-owned"}
	for _, g := range c.gws {
		if g.cmd != nil {
			args = append(args, "-live", g.name)
		}
	}
	c.admin(args...)
	for _, g := range c.gws {
		if g.cmd != nil {
			g.waitPortal()
		}
	}
}

// admin runs rbdgw-admin against the test's prefix and fails the test
// when it fails.
func (c *testCluster) admin(args ...string) string {
	c.t.Helper()
	out, err := c.tryAdmin(args...)
	if err != nil {
		c.t.Fatalf("rbdgw-admin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *testCluster) tryAdmin(args ...string) (string, error) {
	full := append(append(etcdArgs(), "-etcd-prefix", c.prefix), args...)
	out, err := exec.Command(filepath.Join(env.bin, "rbdgw-admin"), full...).CombinedOutput()
	return string(out), err
}

// show returns rbdgw-admin show, decoded.
func (c *testCluster) show() map[string]any {
	c.t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(c.admin("show")), &v); err != nil {
		c.t.Fatal(err)
	}
	return v
}

// owner returns the owner of LUN 0 as rbdgw-admin reports it.
func (c *testCluster) owner() string {
	c.t.Helper()
	targets := c.show()["targets"].([]any)
	luns := targets[0].(map[string]any)["luns"].([]any)
	o, _ := luns[0].(map[string]any)["owner"].(string)
	return o
}

func (c *testCluster) url(g *gateway, lun int) string {
	return fmt.Sprintf("iscsi://%s/%s/%d", g.portal, c.iqn, lun)
}

func (c *testCluster) cleanup() {
	for _, g := range c.gws {
		g.stop()
		if c.t.Failed() {
			if b, err := os.ReadFile(g.log); err == nil {
				c.t.Logf("%s log (last 60 lines):\n%s", g.name, tail(string(b), 60))
			}
		}
	}
	for _, img := range c.images {
		_ = exec.Command("timeout", "30", "rbd", "-c", env.cephConf, "rm", "rbd/"+img).Run()
	}
}

func (g *gateway) start() {
	g.t.Helper()
	f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.bin, "rbdgw"), g.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		g.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(exited) }()
	g.cmd, g.exited = cmd, exited
}

// stop ends the daemon with SIGTERM (SIGKILL after 20 s).
func (g *gateway) stop() { g.signal(syscall.SIGTERM) }

// kill ends the daemon with SIGKILL, like a crash.
func (g *gateway) kill() { g.signal(syscall.SIGKILL) }

func (g *gateway) signal(sig syscall.Signal) {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(sig)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	g.cmd = nil
}

func (g *gateway) waitPortal() {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if nc, err := net.DialTimeout("tcp", g.portal, time.Second); err == nil {
			nc.Close()
			return
		}
		select {
		case <-g.exited:
			g.t.Fatalf("%s exited:\n%s", g.name, g.logTail(40))
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s does not listen on %s", g.name, g.portal)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cephClient is the Ceph client address the daemon logged last.
func (g *gateway) cephClient() string {
	g.t.Helper()
	b, err := os.ReadFile(g.log)
	if err != nil {
		g.t.Fatal(err)
	}
	m := regexp.MustCompile(`msg="rbd: connected".* addr=(\S+)`).FindAllStringSubmatch(string(b), -1)
	if len(m) == 0 {
		g.t.Fatalf("%s logged no Ceph client address", g.name)
	}
	return m[len(m)-1][1]
}

func (g *gateway) logTail(n int) string {
	b, _ := os.ReadFile(g.log)
	return tail(string(b), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// mpio runs the test initiator and returns the JSON objects it printed.
func mpio(t *testing.T, args ...string) ([]map[string]any, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.bin, "mpio"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	events := parseEvents(out)
	if err != nil {
		return events, fmt.Errorf("mpio %s: %w: %s", args[0], err, stderr.String())
	}
	return events, nil
}

func parseEvents(out []byte) []map[string]any {
	var events []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			events = append(events, ev)
		}
	}
	return events
}

// identity is what LUN 0 reports through g (mpio identity).
func (c *testCluster) identity(g *gateway) map[string]any {
	c.t.Helper()
	ev, err := mpio(c.t, "identity", "-target", c.iqn, "-portal", g.portal)
	if err != nil || len(ev) != 1 {
		c.t.Fatalf("identity through %s: %v %v", g.name, ev, err)
	}
	return ev[0]
}

// groupStates maps port group id to "AO", "ANO", ... with "+pref".
func groupStates(id map[string]any) map[int]string {
	out := map[int]string{}
	for _, g := range id["groups"].([]any) {
		m := g.(map[string]any)
		s := m["state"].(string)
		if m["pref"].(bool) {
			s += "+pref"
		}
		out[int(m["id"].(float64))] = s
	}
	return out
}

// tpgOf is the target port group id of a gateway of newCluster: 1 for
// gw-a, 2 for gw-b, ...
func tpgOf(g *gateway) int { return int(g.name[len(g.name)-1]-'a') + 1 }
