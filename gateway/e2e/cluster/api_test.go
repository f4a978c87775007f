package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// apiGateway is a gateway daemon serving the REST API.
type apiGateway struct {
	*gateway
	apiURL string
}

// apiCluster is two gateways configured through their REST APIs only.
type apiCluster struct {
	t      *testing.T
	prefix string
	gws    []*apiGateway
	token  string
	images []string
}

// newAPICluster starts gw-a and gw-b with their APIs and nothing defined:
// everything else comes through the API.
func newAPICluster(t *testing.T) *apiCluster {
	t.Helper()
	need(t)
	c := &apiCluster{t: t, prefix: fmt.Sprintf("/api-%04x/", rand.IntN(1<<16))}
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	for _, name := range []string{"gw-a", "gw-b"} {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		apiPort, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		g := &apiGateway{gateway: &gateway{t: t, name: name, portal: fmt.Sprintf("127.0.0.1:%d", port)},
			apiURL: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
		g.log = filepath.Join(t.TempDir(), name+".log")
		g.args = append(etcdArgs(), "-etcd-prefix", c.prefix, "-gateway", name,
			"-ceph-conf", env.cephConf, "-lease-ttl", "5s", "-log-level", "debug",
			"-api", fmt.Sprintf("127.0.0.1:%d", apiPort), "-api-token-file", tokenFile)
		c.gws = append(c.gws, g)
	}
	t.Cleanup(c.cleanup)
	for _, g := range c.gws {
		g.start()
	}
	for _, g := range c.gws {
		c.waitAPI(g)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("the first admin token was not written: %v", err)
	}
	c.token = strings.TrimSpace(string(b))
	if st, err := os.Stat(tokenFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", st.Mode(), err)
	}
	for _, g := range c.gws {
		if strings.Contains(g.logTail(1000), c.token) {
			t.Fatalf("%s logged the token", g.name)
		}
	}
	return c
}

func (c *apiCluster) cleanup() {
	for _, g := range c.gws {
		g.stop()
		if c.t.Failed() {
			c.t.Logf("%s log (last 60 lines):\n%s", g.name, g.logTail(60))
		}
	}
	for _, img := range c.images {
		_ = exec.Command("timeout", "30", "rbd", "-c", env.cephConf, "rm", "rbd/"+img).Run()
	}
}

func (c *apiCluster) waitAPI(g *apiGateway) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(g.apiURL + "/api/v1/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-g.exited:
			c.t.Fatalf("%s exited:\n%s", g.name, g.logTail(40))
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s API did not answer", g.name)
}

// call sends one request to g's API and returns the status and body.
func (c *apiCluster) call(g *apiGateway, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.apiURL+"/api/v1"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (c *apiCluster) must(want int, g *apiGateway, method, path, body string, hdr ...string) []byte {
	c.t.Helper()
	st, b, _ := c.call(g, method, path, body, hdr...)
	if st != want {
		c.t.Fatalf("%s %s %s via %s: %d %s, want %d", method, path, body, g.name, st, b, want)
	}
	return b
}

func (c *apiCluster) newImageName() string {
	img := fmt.Sprintf("%s%d-%04x", strings.Trim(c.prefix, "/"), len(c.images), rand.IntN(1<<16))
	c.images = append(c.images, img)
	return img
}

// lunsSeen lists the LUN ids iscsi-ls reports for initiator with CHAP
// user/secret through portal.
func lunsSeen(t *testing.T, initiator, user, secret, portal string) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iscsi-ls", "-s", "-i", initiator,
		fmt.Sprintf("iscsi://%s%%%s@%s", user, secret, portal)).CombinedOutput()
	if err != nil {
		t.Fatalf("iscsi-ls as %s through %s: %v\n%s", initiator, portal, err, out)
	}
	// iscsi-ls lists the LUNs once per portal of the target.
	var luns []string
	for _, m := range regexp.MustCompile(`Lun:(\d+)`).FindAllStringSubmatch(string(out), -1) {
		if !slices.Contains(luns, m[1]) {
			luns = append(luns, m[1])
		}
	}
	return luns, string(out)
}

func inq(initiator, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iscsi-inq", "-i", initiator, url).CombinedOutput()
	return string(out), err
}

// TestAPIManagesCluster: a cluster set up and changed only through the
// REST API, checked with real initiators.
func TestAPIManagesCluster(t *testing.T) {
	c := newAPICluster(t)
	a, b := c.gws[0], c.gws[1]
	iqn := "iqn.2024-01.io.rbdgw:" + strings.Trim(c.prefix, "/")
	h1, h2 := "iqn.1994-05.com.redhat:apihost1", "iqn.1994-05.com.redhat:apihost2"

	// Any gateway's API accepts any change.
	c.must(200, a, "PUT", "/gateways/gw-a", `{"portals": ["`+a.portal+`"]}`)
	c.must(200, b, "PUT", "/gateways/gw-b", `{"portals": ["`+b.portal+`"]}`)
	created, imported := c.newImageName(), c.newImageName()
	c.must(201, a, "PUT", "/disks/rbd/"+created, `{"size": "64M"}`)
	if out, err := exec.Command("timeout", "60", "rbd", "-c", env.cephConf, "create", "--size", "32M", "rbd/"+imported).CombinedOutput(); err != nil {
		t.Fatalf("rbd create: %v %s", err, out)
	}
	c.must(201, b, "PUT", "/disks/rbd/"+imported, `{}`)
	var d model.Disk
	json.Unmarshal(c.must(200, a, "GET", "/disks/rbd/"+imported, ""), &d)
	if d.Size != 32<<20 || d.ImageSize == nil || *d.ImageSize != 32<<20 {
		t.Fatalf("imported disk: %+v", d)
	}
	c.must(200, a, "PUT", "/targets/"+iqn, `{"gateways": ["gw-a", "gw-b"]}`)
	c.must(201, a, "POST", "/targets/"+iqn+"/luns", `{"disk": "rbd/`+created+`"}`)
	c.must(201, b, "POST", "/targets/"+iqn+"/luns", `{"disk": "rbd/`+imported+`"}`)
	c.must(200, a, "PUT", "/targets/"+iqn+"/hosts/"+h1, `{"chap": {"user": "apihost1", "secret": "host1secret01"}, "luns": [0]}`)
	var res model.WriteResult
	json.Unmarshal(c.must(200, b, "PUT", "/targets/"+iqn+"/hosts/"+h2+"?wait=applied&timeout=60s",
		`{"chap": {"user": "apihost2", "secret": "host2secret02"}, "luns": [1]}`), &res)
	if res.Applied == nil || !res.Applied.Done || len(res.Applied.Gateways) != 2 {
		t.Fatalf("wait=applied: %+v", res.Applied)
	}

	// Each host sees only its own LUN, through either gateway.
	for _, g := range c.gws {
		g.waitPortal()
		if luns, out := lunsSeen(t, h1, "apihost1", "host1secret01", g.portal); strings.Join(luns, ",") != "0" {
			t.Fatalf("host1 through %s sees LUNs %v:\n%s", g.name, luns, out)
		}
		if luns, out := lunsSeen(t, h2, "apihost2", "host2secret02", g.portal); strings.Join(luns, ",") != "1" {
			t.Fatalf("host2 through %s sees LUNs %v:\n%s", g.name, luns, out)
		}
		// I/O to the other host's LUN is refused.
		if out, err := inq(h1, fmt.Sprintf("iscsi://apihost1%%host1secret01@%s/%s/1", g.portal, iqn)); err == nil {
			t.Fatalf("host1 reached LUN 1 through %s:\n%s", g.name, out)
		}
	}
	// A wrong secret is refused.
	if out, err := inq(h1, fmt.Sprintf("iscsi://apihost1%%wrongsecret99@%s/%s/0", a.portal, iqn)); err == nil {
		t.Fatalf("wrong CHAP secret logged in:\n%s", out)
	}

	// The connection endpoint's data logs in, on every portal it lists.
	var conn model.Connection
	json.Unmarshal(c.must(200, a, "GET", "/targets/"+iqn+"/hosts/"+h2+"/connection", ""), &conn)
	if len(conn.Data.TargetPortals) != 2 || conn.Data.TargetLUN != 1 || conn.Data.AuthMethod != "CHAP" {
		t.Fatalf("connection: %+v", conn.Data)
	}
	for i, p := range conn.Data.TargetPortals {
		url := fmt.Sprintf("iscsi://%s%%%s@%s/%s/%d", conn.Data.AuthUsername, conn.Data.AuthPassword, p, conn.Data.TargetIQNs[i], conn.Data.TargetLUNs[i])
		if out, err := inq(h2, url); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
			t.Fatalf("log in with the connection data at %s: %v\n%s", p, err, out)
		}
	}

	// Sessions are gathered from every gateway.
	var sess model.Sessions
	json.Unmarshal(c.must(200, b, "GET", "/sessions", ""), &sess)
	if len(sess.Down) != 0 {
		t.Fatalf("sessions: down %v", sess.Down)
	}

	// A change while gw-b is down succeeds; gw-b applies it when it starts.
	b.stop()
	json.Unmarshal(c.must(200, a, "PUT", "/targets/"+iqn+"/hosts/"+h1+"?wait=applied&timeout=30s",
		`{"chap": {"user": "apihost1", "secret": "***"}, "luns": [0, 1]}`), &res)
	if res.Applied == nil || !res.Applied.Done || strings.Join(res.Applied.Down, ",") != "gw-b" {
		t.Fatalf("wait=applied with gw-b down: %+v", res.Applied)
	}
	var gws []model.Gateway
	json.Unmarshal(c.must(200, a, "GET", "/gateways", ""), &gws)
	if len(gws) != 2 || gws[1].Live {
		t.Fatalf("gateways with gw-b down: %+v", gws)
	}
	json.Unmarshal(c.must(200, a, "GET", "/sessions", ""), &sess)
	if strings.Join(sess.Down, ",") != "gw-b" {
		t.Fatalf("sessions with gw-b down: %+v", sess)
	}
	b.start()
	c.waitAPI(b)
	b.waitPortal()
	deadline := time.Now().Add(30 * time.Second)
	for {
		json.Unmarshal(c.must(200, b, "GET", "/gateways/gw-b", ""), &gws[1])
		if gws[1].Live && gws[1].AppliedRevision >= res.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw-b did not apply revision %d: %+v", res.Revision, gws[1])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if luns, out := lunsSeen(t, h1, "apihost1", "host1secret01", b.portal); strings.Join(luns, ",") != "0,1" {
		t.Fatalf("host1 through the restarted gw-b sees LUNs %v:\n%s", luns, out)
	}

	// Two concurrent changes with the same If-Match: one wins, one gets
	// 412. (Both change the host, which sees LUN 1: a write of what is
	// there already writes nothing and takes nothing from the other.)
	_, _, hdr := c.call(a, "GET", "/targets/"+iqn+"/hosts/"+h2, "")
	tag := hdr.Get("ETag")
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, g := range c.gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = c.call(g, "PUT", "/targets/"+iqn+"/hosts/"+h2,
				fmt.Sprintf(`{"chap": {"user": "apihost2", "secret": "***"}, "luns": %s}`, []string{"[0]", "[0, 1]"}[i]), "If-Match", tag)
		}()
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 412 || statuses[0] == 412 && statuses[1] == 200) {
		t.Fatalf("concurrent If-Match writes through both gateways: %v", statuses)
	}

	// The audit log names the bootstrap token for every write.
	var audit model.Audit
	json.Unmarshal(c.must(200, a, "GET", "/audit?limit=1000", ""), &audit)
	if len(audit.Entries) < 10 || audit.Entries[0].TokenName != "bootstrap" || bytes.Contains([]byte(fmt.Sprint(audit)), []byte("host1secret01")) {
		t.Fatalf("audit: %d entries, newest %+v", len(audit.Entries), audit.Entries[0])
	}
}
