package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
)

const (
	tgt  = "iqn.2024-01.io.rbdgw:t1"
	ini1 = "iqn.1994-05.com.redhat:host1"
	ini2 = "iqn.1994-05.com.redhat:host2"
)

// base defines two gateways, two disks and a target serving both.
func (e *env) base() {
	e.t.Helper()
	e.must(200, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
	e.must(200, "PUT", "/gateways/gw-b", model.GatewayPut{Portals: []string{"127.0.0.1:3261"}})
	e.must(201, "PUT", "/disks/rbd/d1", `{"size": "1G"}`)
	e.must(201, "PUT", "/disks/rbd/d2", `{"size": 1073741824}`)
	e.must(200, "PUT", "/targets/"+tgt, model.TargetPut{Gateways: []string{"gw-a", "gw-b"}})
	e.must(201, "POST", "/targets/"+tgt+"/luns", `{"disk": "rbd/d1"}`)
	e.must(201, "POST", "/targets/"+tgt+"/luns", `{"disk": "rbd/d2"}`)
}

// export is the whole stored configuration, to show that a refused
// request stored nothing.
func (e *env) export() string {
	e.t.Helper()
	return string(e.must(200, "GET", "/config/export", nil).body)
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	if r := e.do(0, "GET", "/gateways", nil); r.status != 401 || r.err().Code != model.CodeUnauthenticated || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s", r.status, r.body)
	} else if !strings.Contains(string(r.body), `Bearer <token>`) {
		t.Fatalf("no token: the message is HTML-escaped for curl's reader: %s", r.body)
	}
	if r := e.do(0, "GET", "/gateways", nil, "Authorization", "Bearer rbdgw_nope_nope"); r.status != 401 {
		t.Fatalf("bad token: %d %s", r.status, r.body)
	}
	if r := e.do(0, "GET", "/gateways", nil, "Authorization", "Basic YWRtaW46YWRtaW4="); r.status != 401 {
		t.Fatalf("basic auth admin/admin: %d %s", r.status, r.body)
	}
	if r := e.do(api.RoleViewer, "GET", "/gateways", nil); r.status != 200 {
		t.Fatalf("viewer read: %d %s", r.status, r.body)
	}
	before := e.export()
	r := e.do(api.RoleViewer, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
	if r.status != 403 || r.err().Code != model.CodeForbidden || !strings.Contains(r.err().Message, "PUT /api/v1/gateways/gw-a needs operator") {
		t.Fatalf("viewer write: %d %s", r.status, r.body)
	}
	if e.export() != before {
		t.Fatal("a refused write stored something")
	}
	if r := e.do(api.RoleOperator, "GET", "/tokens", nil); r.status != 403 {
		t.Fatalf("operator lists tokens: %d %s", r.status, r.body)
	}
	if r := e.do(api.RoleAdmin, "GET", "/tokens", nil); r.status != 200 {
		t.Fatalf("admin lists tokens: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/healthz", "/openapi.json"} {
		if r := e.do(0, "GET", p, nil); r.status != 200 {
			t.Fatalf("%s without a token: %d", p, r.status)
		}
	}
}

// TestBadInput: every bad request is a 4xx with a clear message, and
// nothing is stored.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.base()
	before := e.export()
	big := `{"luns": [` + strings.Repeat("0,", 5<<20) + `0]}`
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code, msg          string
	}{
		{"malformed json", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"luns": [0,}`, 400, model.CodeMalformed, "line 1, column 13"},
		{"wrong type", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"luns": "0"}`, 400, model.CodeMalformed, `field "luns": expected an array`},
		{"unknown field", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"lun": [0]}`, 400, model.CodeMalformed, `unknown field "lun"`},
		{"bad iqn in path", "PUT", "/targets/iqn.bogus/hosts/" + ini1, `{"luns": [0]}`, 400, model.CodeInvalid, "iqn.bogus"},
		{"bad initiator", "PUT", "/targets/" + tgt + "/hosts/not-an-iqn", `{"luns": [0]}`, 400, model.CodeInvalid, "not-an-iqn"},
		{"short chap secret", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"chap": {"user": "u", "secret": "short"}, "luns": [0]}`, 400, model.CodeInvalid, "secret"},
		{"lun out of range", "PUT", "/targets/" + tgt + "/luns/300", `{"disk": "rbd/d1"}`, 400, model.CodeInvalid, "0 to 255"},
		{"lun id not a number", "GET", "/targets/" + tgt + "/luns/x", nil, 400, model.CodeInvalid, "LUN id"},
		{"host maps missing lun", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"luns": [7]}`, 400, model.CodeInvalid, "has no LUN 7"},
		{"bad cidr", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"luns": [0], "addresses": ["10.0.0.0/33"]}`, 400, model.CodeInvalid,
			`host ` + ini1 + ` addresses: "10.0.0.0/33" is not an IP address or CIDR`},
		{"address with host bits", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"addresses": ["10.1.2.3/16"]}`, 400, model.CodeInvalid,
			`"10.1.2.3/16" has host bits set (the network is 10.1.0.0/16)`},
		{"host name as address", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"addresses": ["client1.example.com"]}`, 400, model.CodeInvalid,
			`"client1.example.com" is not an IP address or CIDR`},
		{"address twice", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"addresses": ["192.0.2.7", "192.0.2.7/32"]}`, 400, model.CodeInvalid,
			"listed twice"},
		{"too many addresses", "PUT", "/targets/" + tgt + "/hosts/" + ini1, model.HostPut{Addresses: manyAddresses(65)}, 400, model.CodeInvalid,
			"at most 64"},
		{"addresses of wrong type", "PUT", "/targets/" + tgt + "/hosts/" + ini1, `{"addresses": "10.0.0.1"}`, 400, model.CodeMalformed,
			`field "addresses": expected an array`},
		{"unknown pool", "PUT", "/disks/nopool/x", `{"size": "1G"}`, 404, model.CodeNotFound, "nopool"},
		{"bad size unit", "PUT", "/disks/rbd/x", `{"size": "10Q"}`, 400, model.CodeMalformed, "unit"},
		{"size not block multiple", "PUT", "/disks/rbd/x", `{"size": 1000}`, 400, model.CodeInvalid, "multiple"},
		{"import missing image", "PUT", "/disks/rbd/nothere", `{}`, 404, model.CodeImageMissing, "give a size"},
		{"shrink", "PUT", "/disks/rbd/d1", `{"size": "512M"}`, 400, model.CodeInvalid, "only grow"},
		{"huge body", "PUT", "/targets/" + tgt + "/hosts/" + ini1, big, 413, model.CodeTooLarge, "larger than"},
		{"empty body", "PUT", "/targets/" + tgt + "/hosts/" + ini1, "", 400, model.CodeMalformed, "empty"},
		{"null body", "PUT", "/targets/" + tgt + "/hosts/" + ini1, "null", 400, model.CodeMalformed, "expected a JSON object, got null"},
		{"huge body, optional", "PUT", "/targets/" + tgt + "/gateways/gw-a", big, 413, model.CodeTooLarge, "larger than"},
		{"null body, optional", "PUT", "/targets/" + tgt + "/gateways/gw-a", "null", 400, model.CodeMalformed, "got null"},
		{"unknown gateway in target", "PUT", "/targets/" + tgt, `{"gateways": ["gw-z"]}`, 400, model.CodeInvalid, "gateway gw-z does not exist"},
		{"bad portal", "PUT", "/gateways/gw-c", `{"portals": ["localhost"]}`, 400, model.CodeInvalid, "portal"},
		{"bad if-match", "PUT", "/gateways/gw-a", `{"portals": ["127.0.0.1:3260"]}`, 400, model.CodeInvalid, "If-Match"},
		{"bad dry_run", "PUT", "/gateways/gw-a?dry_run=maybe", `{"portals": ["127.0.0.1:3260"]}`, 400, model.CodeInvalid, "dry_run"},
		{"bad wait", "PUT", "/gateways/gw-a?wait=forever", `{"portals": ["127.0.0.1:3260"]}`, 400, model.CodeInvalid, "wait"},
		{"delete mapped disk", "DELETE", "/disks/rbd/d1", nil, 409, model.CodeInUse, "rbd/d1"},
		{"no such route", "GET", "/nothing", nil, 404, model.CodeNotFound, "openapi.json"},
		{"wrong method", "PATCH", "/gateways/gw-a", `{}`, 405, model.CodeMethodNotAllowed, "PATCH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.name == "bad if-match" {
				hdr = []string{"If-Match", "yesterday"}
			}
			r := e.do(api.RoleOperator, tc.method, tc.path, tc.body, hdr...)
			got := r.err()
			if r.status != tc.status || got.Code != tc.code || !strings.Contains(got.Message, tc.msg) {
				t.Fatalf("%d %s %q; want %d %s containing %q", r.status, got.Code, got.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
	if after := e.export(); after != before {
		t.Fatalf("refused requests changed the configuration:\nbefore %s\nafter  %s", before, after)
	}
	if _, ok := e.ceph.images["rbd/x"]; ok {
		t.Fatal("a refused disk left its image behind")
	}
}

func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	e.base()
	r := e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, `{"luns": [0]}`)
	r = e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil)
	tag := r.header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	// Two writers read the same revision and write concurrently: exactly
	// one wins, the other gets 412.
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, luns := range []string{`{"luns": [0, 1]}`, `{"luns": [1]}`} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/hosts/"+ini1, luns, "If-Match", tag).status
		}()
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 412) && !(statuses[0] == 412 && statuses[1] == 200) {
		t.Fatalf("concurrent If-Match writes: %v, want one 200 and one 412", statuses)
	}
	// The winner's ETag works for the next write.
	r = e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil)
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, `{"luns": []}`, "If-Match", r.header.Get("ETag"))
	r = e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/hosts/"+ini2, `{"luns": []}`, "If-Match", "*")
	if r.status != 412 || !strings.HasSuffix(r.err().Message, ini2+" does not exist (If-Match *)") {
		t.Fatalf("If-Match * on a missing host: %d %s", r.status, r.body)
	}
	// If-None-Match: * creates, and refuses to replace.
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini2, `{"luns": []}`, "If-None-Match", "*")
	if r := e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/hosts/"+ini2, `{"luns": [0]}`, "If-None-Match", "*"); r.status != 412 {
		t.Fatalf("If-None-Match * on an existing host: %d %s", r.status, r.body)
	}
}

func TestDryRunAndSecrets(t *testing.T) {
	e := newEnv(t)
	e.base()
	before := e.export()
	var res model.WriteResult
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1+"?dry_run=true", `{"chap": {"user": "host1", "secret": "0123456789ab"}, "luns": [1]}`).decode(t, &res)
	if !res.DryRun || len(res.Changes) != 1 || res.Changes[0].Op != "put" {
		t.Fatalf("dry run: %+v", res)
	}
	if strings.Contains(before, "0123456789ab") || e.export() != before {
		t.Fatal("dry run stored something")
	}
	r := e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, `{"chap": {"user": "host1", "secret": "0123456789ab"}, "luns": [1]}`)
	if strings.Contains(string(r.body), "0123456789ab") {
		t.Fatalf("the write's answer shows the secret: %s", r.body)
	}
	r = e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil)
	var h model.Host
	r.decode(t, &h)
	if h.CHAP == nil || h.CHAP.Secret != model.Masked || strings.Contains(string(r.body), "0123456789ab") {
		t.Fatalf("GET host: %s", r.body)
	}
	// Writing the document back as read keeps the secret.
	e.live("gw-a")
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, model.HostPut{CHAP: h.CHAP, LUNs: []uint64{0, 1}})
	var conn model.Connection
	e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1+"/connection", nil).decode(t, &conn)
	if conn.Data.AuthPassword != "0123456789ab" || conn.Data.AuthUsername != "host1" {
		t.Fatalf("connection after a masked write-back: %+v", conn.Data)
	}
	if strings.Contains(e.export(), "0123456789ab") {
		t.Fatal("export shows the secret")
	}
	if r := e.do(api.RoleViewer, "GET", "/targets/"+tgt+"/hosts/"+ini1+"/connection", nil); r.status != 403 {
		t.Fatalf("viewer reads the connection (with its secret): %d", r.status)
	}
}

func TestDisksAndLUNs(t *testing.T) {
	e := newEnv(t)
	e.base()
	// Import an image made outside the API.
	if err := e.ceph.CreateImage("rbd", "legacy", 2<<30, api.ImageOptions{}); err != nil {
		t.Fatal(err)
	}
	var res model.WriteResult
	e.must(201, "PUT", "/disks/rbd/legacy", `{}`).decode(t, &res)
	var d model.Disk
	e.must(200, "GET", "/disks/rbd/legacy", nil).decode(t, &d)
	if d.Size != 2<<30 || d.ImageSize == nil || *d.ImageSize != 2<<30 {
		t.Fatalf("imported disk: %+v", d)
	}
	// An image without exclusive-lock cannot be a disk.
	if err := e.ceph.CreateImage("rbd", "nolock", 1<<30, api.ImageOptions{Features: []string{"layering"}}); err != nil {
		t.Fatal(err)
	}
	if r := e.do(api.RoleOperator, "PUT", "/disks/rbd/nolock", `{}`); r.status != 400 || r.err().Code != model.CodeExclusiveLockFeat {
		t.Fatalf("import without exclusive-lock: %d %s", r.status, r.body)
	}
	// Grow.
	e.must(200, "PUT", "/disks/rbd/d1", `{"size": "2G"}`)
	if e.ceph.images["rbd/d1"].size != 2<<30 {
		t.Fatal("grow did not resize the image")
	}
	// Idempotent PUT.
	e.must(200, "PUT", "/disks/rbd/d1", `{"size": "2G"}`).decode(t, &res)
	if len(res.Changes) != 1 {
		t.Logf("second PUT changes: %+v", res.Changes)
	}
	// The same disk cannot be mapped twice; a LUN is mapped idempotently.
	e.must(200, "PUT", "/targets/"+tgt+"/luns/0", `{"disk": "rbd/d1"}`)
	if r := e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/luns/5", `{"disk": "rbd/d1"}`); r.status != 409 {
		t.Fatalf("map a mapped disk again: %d %s", r.status, r.body)
	}
	// POST names the LUN it created.
	e.must(201, "PUT", "/disks/rbd/d3", `{"size": "1G"}`)
	if loc := e.must(201, "POST", "/targets/"+tgt+"/luns", `{"disk": "rbd/d3"}`).header.Get("Location"); loc != "/api/v1/targets/"+tgt+"/luns/2" {
		t.Fatalf("Location %q", loc)
	}
	e.must(200, "POST", "/targets/"+tgt+"/luns", `{"disk": "rbd/d3"}`) // already there: nothing created
	e.must(200, "DELETE", "/targets/"+tgt+"/luns/2", nil)
	e.must(200, "DELETE", "/disks/rbd/d3?remove_image=true", nil)
	var luns []model.LUN
	e.must(200, "GET", "/targets/"+tgt+"/luns", nil).decode(t, &luns)
	if len(luns) != 2 || luns[0].Disk != "rbd/d1" || luns[1].ID != 1 {
		t.Fatalf("luns: %+v", luns)
	}
	// Snapshots.
	e.must(201, "POST", "/disks/rbd/d1/snapshots", `{"name": "before-upgrade"}`)
	var snaps []model.Snapshot
	e.must(200, "GET", "/disks/rbd/d1/snapshots", nil).decode(t, &snaps)
	if len(snaps) != 1 || snaps[0].Name != "before-upgrade" {
		t.Fatalf("snapshots: %+v", snaps)
	}
	e.must(200, "DELETE", "/disks/rbd/d1/snapshots/before-upgrade", nil)
	// Unmap and delete with the image.
	e.must(200, "DELETE", "/targets/"+tgt+"/luns/1", nil)
	e.must(200, "DELETE", "/disks/rbd/d2?remove_image=true", nil)
	if _, ok := e.ceph.images["rbd/d2"]; ok {
		t.Fatal("remove_image=true left the image")
	}
	e.must(200, "DELETE", "/disks/rbd/legacy", nil)
	if _, ok := e.ceph.images["rbd/legacy"]; !ok {
		t.Fatal("a detach removed the image")
	}
	var imgs []model.Image
	e.must(200, "GET", "/pools/rbd/images", nil).decode(t, &imgs)
	if len(imgs) != 3 {
		t.Fatalf("images: %+v", imgs)
	}
}

func TestTargetGateways(t *testing.T) {
	e := newEnv(t)
	e.must(200, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
	e.must(200, "PUT", "/targets/"+tgt, model.TargetPut{Gateways: []string{"gw-a"}})
	// A new gateway is created and joins; an existing one joins as it is;
	// a different portal for an existing gateway is refused.
	e.must(200, "PUT", "/targets/"+tgt+"/gateways/gw-b", model.TargetGatewayPut{Portals: []string{"127.0.0.1:3261"}})
	e.must(200, "PUT", "/targets/"+tgt+"/gateways/gw-a", model.TargetGatewayPut{Portals: []string{"127.0.0.1:3260"}})
	if r := e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/gateways/gw-a", model.TargetGatewayPut{Portals: []string{"127.0.0.1:3999"}}); r.status != 409 || !strings.Contains(r.err().Message, "registered") {
		t.Fatalf("different portal: %d %s", r.status, r.body)
	}
	if r := e.do(api.RoleOperator, "PUT", "/targets/"+tgt+"/gateways/gw-c", nil); r.status != 400 {
		t.Fatalf("unknown gateway without portals: %d %s", r.status, r.body)
	}
	var tg model.Target
	e.must(200, "GET", "/targets/"+tgt, nil).decode(t, &tg)
	if len(tg.Gateways) != 2 {
		t.Fatalf("target gateways: %v", tg.Gateways)
	}
	e.must(200, "DELETE", "/targets/"+tgt+"/gateways/gw-b", nil)
	var gws []model.Gateway
	e.must(200, "GET", "/gateways", nil).decode(t, &gws)
	if len(gws) != 2 || gws[1].Live || len(gws[1].Targets) != 0 {
		t.Fatalf("gateways: %+v", gws)
	}
}

func manyAddresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.%d.0.0/16", i)
	}
	return out
}

// TestHostAddresses: a host's source addresses are stored canonical (as
// every gateway enforces them), shown on reads, kept by a PUT that gives
// them again and cleared by one that does not.
func TestHostAddresses(t *testing.T) {
	e := newEnv(t)
	e.base()
	var h model.Host
	r := e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1,
		`{"luns": [0], "addresses": ["2001:DB8::/32", "192.0.2.7/32", "10.0.0.0/8", "::ffff:198.51.100.1"]}`)
	want := []string{"10.0.0.0/8", "192.0.2.7", "198.51.100.1", "2001:db8::/32"}
	if !strings.Contains(string(r.body), `"addresses":["10.0.0.0/8","192.0.2.7","198.51.100.1","2001:db8::/32"]`) {
		t.Fatalf("PUT does not store the canonical list: %s", r.body)
	}
	e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil).decode(t, &h)
	if !slices.Equal(h.Addresses, want) {
		t.Fatalf("GET: addresses %q, want %q", h.Addresses, want)
	}
	var hosts []model.Host
	e.must(200, "GET", "/targets/"+tgt+"/hosts", nil).decode(t, &hosts)
	if len(hosts) != 1 || !slices.Equal(hosts[0].Addresses, want) {
		t.Fatalf("host list: %+v", hosts)
	}
	// Another host without a list: any address, shown as [].
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini2, `{"luns": [1]}`)
	if r := e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini2, nil); !strings.Contains(string(r.body), `"addresses":[]`) {
		t.Fatalf("a host without addresses: %s", r.body)
	}
	// A dry run validates and stores nothing.
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1+"?dry_run=true", `{"luns": [0], "addresses": ["127.0.0.1"]}`)
	e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil).decode(t, &h)
	if !slices.Equal(h.Addresses, want) {
		t.Fatalf("after a dry run: addresses %q", h.Addresses)
	}
	// PUT is the whole desired state: no addresses, any address.
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, model.HostPut{LUNs: []uint64{0}})
	e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil).decode(t, &h)
	if h.Addresses == nil || len(h.Addresses) != 0 {
		t.Fatalf("addresses after a PUT without them: %#v", h.Addresses)
	}
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, model.HostPut{LUNs: []uint64{0}, Addresses: manyAddresses(64)})
	e.must(200, "GET", "/targets/"+tgt+"/hosts/"+ini1, nil).decode(t, &h)
	if len(h.Addresses) != 64 {
		t.Fatalf("64 addresses stored as %d", len(h.Addresses))
	}
}

func TestExportImport(t *testing.T) {
	e := newEnv(t)
	e.base()
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini1, `{"chap": {"user": "host1", "secret": "0123456789ab"}, "luns": [0], "addresses": ["192.0.2.0/24", "10.1.2.3"]}`)
	e.must(200, "PUT", "/targets/"+tgt+"/hosts/"+ini2, `{"luns": []}`)
	e.must(200, "PUT", "/targets/"+tgt+"/host-groups/g1", `{"members": ["`+ini2+`"], "luns": [1]}`)
	yamlDoc := e.must(200, "GET", "/config/export?format=yaml", nil).body
	jsonDoc := e.export()
	if !strings.Contains(jsonDoc, `"addresses":["10.1.2.3","192.0.2.0/24"]`) {
		t.Fatalf("the export does not carry a host's addresses:\n%s", jsonDoc)
	}
	// Importing the export into the same cluster changes nothing.
	var res model.WriteResult
	e.must(200, "POST", "/config/import", jsonDoc).decode(t, &res)
	if e.export() != jsonDoc {
		t.Fatal("re-import changed the configuration")
	}
	// Into a fresh cluster: the same configuration, masked secrets refused
	// (there is none to keep).
	f := newEnv(t)
	r := f.do(api.RoleOperator, "POST", "/config/import?dry_run=true", yamlDoc, "Content-Type", "application/yaml")
	if r.status != 400 || !strings.Contains(r.err().Message, "no secret is stored") {
		t.Fatalf("import with masked secrets into an empty cluster: %d %s", r.status, r.body)
	}
	clean := strings.ReplaceAll(jsonDoc, `"secret":"***"`, `"secret":"0123456789ab"`)
	f.must(200, "POST", "/config/import", clean)
	if got := f.export(); got != jsonDoc {
		t.Fatalf("import into a fresh cluster:\n%s\nwant\n%s", got, jsonDoc)
	}
	// A standalone gateway's file.
	g := newEnv(t)
	standalone := `portals: ["127.0.0.1:3270"]
disks:
  - {name: vm1, backend: rbd, pool: rbd, image: vm1, size: 1073741824}
targets:
  - iqn: iqn.2024-01.io.rbdgw:standalone
    luns: [{id: 0, disk: vm1}]
    acls: [{initiator: ` + ini1 + `, addresses: ["198.51.100.0/24"]}, {initiator: ` + ini2 + `, luns: []}]
`
	if r := g.do(api.RoleOperator, "POST", "/config/import", standalone, "Content-Type", "application/yaml"); r.status != 400 || !strings.Contains(r.err().Message, "gateway=") {
		t.Fatalf("standalone without ?gateway: %d %s", r.status, r.body)
	}
	g.must(200, "POST", "/config/import?gateway=gw-a", standalone, "Content-Type", "application/yaml")
	var h model.Host
	g.must(200, "GET", "/targets/iqn.2024-01.io.rbdgw:standalone/hosts/"+ini1, nil).decode(t, &h)
	if len(h.LUNs) != 1 || h.LUNs[0] != 0 || !slices.Equal(h.Addresses, []string{"198.51.100.0/24"}) {
		t.Fatalf("standalone ACL: %+v", h)
	}
	// An ACL with an empty list sees no LUN, in the file and in the cluster.
	g.must(200, "GET", "/targets/iqn.2024-01.io.rbdgw:standalone/hosts/"+ini2, nil).decode(t, &h)
	if len(h.LUNs) != 0 {
		t.Fatalf("standalone ACL with luns: []: %+v", h)
	}
}

func TestAuditRecordsWrites(t *testing.T) {
	e := newEnv(t)
	e.must(200, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
	e.do(api.RoleOperator, "PUT", "/gateways/gw-b", `{"portals": "x"}`)
	e.must(200, "PUT", "/discovery-auth", `{"user": "disco", "secret": "discosecret12"}`)
	var a model.Audit
	r := e.do(api.RoleAdmin, "GET", "/audit", nil)
	r.decode(t, &a)
	if len(a.Entries) != 3 {
		t.Fatalf("audit: %s", r.body)
	}
	if a.Entries[0].Path != "/api/v1/discovery-auth" || strings.Contains(a.Entries[0].Body, "discosecret12") || a.Entries[0].Revision == 0 {
		t.Fatalf("newest entry: %+v", a.Entries[0])
	}
	if a.Entries[1].Status != http.StatusBadRequest || a.Entries[1].Code != model.CodeMalformed {
		t.Fatalf("refused write: %+v", a.Entries[1])
	}
	if a.Entries[2].TokenName != "operator" || a.Entries[2].Role != "operator" {
		t.Fatalf("who: %+v", a.Entries[2])
	}
}

// TestPutTwiceChangesNothing: PUT is desired state, so the same document
// again (a retried initialize_connection, an Ansible run) commits nothing:
// no new revision, no event for the gateways, and an ETag that If-Match
// still takes.
func TestPutTwiceChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.base()
	host := "/targets/" + tgt + "/hosts/" + ini1
	e.must(200, "PUT", "/discovery-auth", `{"user": "disc", "secret": "0123456789abcdef"}`)
	e.must(200, "PUT", "/settings", `{"tuning": {}}`)
	docs := []struct{ path, body string }{
		{"/gateways/gw-a", `{"portals": ["127.0.0.1:3260"]}`},
		{"/disks/rbd/d1", `{"size": "1G"}`},
		{"/disks/rbd/d1", `{}`},
		{"/targets/" + tgt, `{"gateways": ["gw-a", "gw-b"]}`},
		{"/targets/" + tgt + "/luns/0", `{"disk": "rbd/d1"}`},
		{host, `{"chap": {"user": "host1", "secret": "0123456789abcdef"}, "luns": [0], "addresses": ["192.0.2.0/24"]}`},
		{host, `{"chap": {"user": "host1", "secret": "***"}, "luns": [0], "addresses": ["192.0.2.0/24"]}`},
		{"/discovery-auth", `{"user": "disc", "secret": "***"}`},
		{"/settings", `{"tuning": {}}`},
	}
	e.must(200, "PUT", host, docs[5].body)
	for _, d := range docs {
		before := e.export()
		var info model.Info
		e.must(200, "GET", "", nil).decode(t, &info)
		var dry model.WriteResult
		e.must(200, "PUT", d.path+"?dry_run=true", d.body).decode(t, &dry)
		if len(dry.Changes) != 0 {
			t.Fatalf("dry run of PUT %s %s again: %+v, want no change", d.path, d.body, dry.Changes)
		}
		r := e.must(200, "PUT", d.path, d.body)
		var res model.WriteResult
		r.decode(t, &res)
		if len(res.Changes) != 0 || res.Revision > info.Revision {
			t.Fatalf("PUT %s %s again: %s, want no change (cluster at revision %d)", d.path, d.body, r.body, info.Revision)
		}
		var after model.Info
		e.must(200, "GET", "", nil).decode(t, &after)
		if after.Revision != info.Revision || e.export() != before {
			t.Fatalf("PUT %s %s again wrote revision %d (was %d)", d.path, d.body, after.Revision, info.Revision)
		}
		// The answer's revision and ETag are the entity's, as GET has them.
		if got := e.must(200, "GET", d.path, nil).header.Get("ETag"); got != "" && got != `"0"` &&
			(r.header.Get("ETag") != got || fmt.Sprintf(`"%d"`, res.Revision) != got) {
			t.Fatalf("PUT %s again: revision %d, ETag %s; GET says %s", d.path, res.Revision, r.header.Get("ETag"), got)
		}
	}
	// A retry with wait=applied still waits, for the revision that wrote
	// the host as it is, so that it answers once the gateways have it.
	tag := e.must(200, "GET", host, nil).header.Get("ETag")
	waitedFor.Store(0)
	var waited model.WriteResult
	e.must(200, "PUT", host+"?wait=applied", docs[6].body).decode(t, &waited)
	if len(waited.Changes) != 0 || waited.Applied == nil || fmt.Sprintf(`"%d"`, waitedFor.Load()) != tag {
		t.Fatalf("PUT again with wait=applied: %+v, waited for revision %d, want %s", waited, waitedFor.Load(), tag)
	}
	// The no-op's ETag is the host's: a conditional write with it succeeds.
	tag = e.must(200, "PUT", host, docs[6].body).header.Get("ETag")
	e.must(200, "PUT", host, `{"chap": {"user": "host1", "secret": "***"}, "luns": [0, 1]}`, "If-Match", tag)
	// A real change still writes, and a changed secret is a change.
	var res model.WriteResult
	e.must(200, "PUT", host, `{"chap": {"user": "host1", "secret": "fedcba9876543210"}, "luns": [0, 1]}`).decode(t, &res)
	if len(res.Changes) != 1 {
		t.Fatalf("a new CHAP secret: %+v, want one put", res.Changes)
	}
}
