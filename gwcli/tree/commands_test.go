package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

const gib = int64(1) << 30

// fixture is the cluster of ceph-iscsi's walkthrough: two gateways, two
// disks, one target with LUN 0 seen by one logged-in host.
func fixture(t testing.TB, opts ...func(*client.Options)) (*fakeAPI, *Env, *bytes.Buffer, *bytes.Buffer) {
	f := newFake(t)
	f.addGateway("gw1", true, "10.0.0.1:3260")
	f.addGateway("gw2", false, "10.0.0.2:3260")
	f.addDisk("rbd", "disk_1", 90*gib)
	f.addDisk("rbd", "disk_2", 90*gib)
	f.images["rbd"] = append(f.images["rbd"], "free_img")
	f.addTarget(tIQN, "gw1", "gw2")
	f.mapLUN(tIQN, "rbd/disk_1", 0)
	h := f.addHost(tIQN, hIQN, 0)
	h.LoggedIn = []string{"gw1"}
	f.sessions = []model.Session{{Gateway: "gw1", Target: tIQN, Initiator: hIQN, Portal: "10.0.0.1:3260", RemoteAddress: "10.0.9.9:50000",
		LoginTime: time.Now().Add(-90 * time.Minute), LUNs: []uint64{0}}}
	c, _ := f.start(opts...)
	var out, errb bytes.Buffer
	e := NewEnv(c, &out, &errb)
	e.Cache.ColdWait = 2 * time.Second
	return f, e, &out, &errb
}

// run runs line and returns its output and exit code.
func run(t testing.TB, e *Env, line string) (string, int) {
	t.Helper()
	out := e.Out.(*bytes.Buffer)
	out.Reset()
	err := e.Line(context.Background(), line)
	if err != nil {
		return out.String() + "ERROR: " + err.Error(), ExitCode(err)
	}
	return out.String(), 0
}

func mustRun(t testing.TB, e *Env, line string) string {
	t.Helper()
	s, code := run(t, e, line)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", line, code, s)
	}
	return s
}

func hasRequest(reqs []string, prefix string) bool {
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

func TestLsRoot(t *testing.T) {
	f, e, _, _ := fixture(t)
	out := mustRun(t, e, "ls /")
	for _, want := range []string{
		"o- / ",
		"  o- cluster ",
		"[HEALTH_OK, Gateways: 2/2 live]",
		"  | o- pools ",
		"  |   o- rbd ",
		"[(x3), Commit: 180G/100G (180%), Used: 3M]",
		"  o- disks ",
		"[180G, Disks: 2]",
		"  | o- rbd ",
		"[rbd (180G)]",
		"  |   o- disk_1 ",
		"[rbd/disk_1 (90G, LUN 0, Owner: gw1)]",
		"[rbd/disk_2 (90G, not mapped)]",
		"  o- iscsi-targets ",
		"[DiscoveryAuth: None, Targets: 1]",
		"    o- " + tIQN + " ",
		"[Auth: None, Gateways: 2]",
		"      o- disks ",
		"      | o- rbd/disk_1 ",
		"[Owner: gw1, Lun: 0]",
		"      o- gateways ",
		"[Up: 1/2, Portals: 2]",
		"[10.0.0.1:3260 (UP)]",
		"[10.0.0.2:3260 (DOWN)]",
		"[Groups: 0]",
		"[Auth: ACL_ENABLED, Hosts: 1]",
		"        o- " + hIQN + " ",
		"[LOGGED-IN (gw1), Auth: None, Disks: 1(90G)]",
		"          o- lun0 ",
		"[rbd/disk_1(90G), Owner: gw1]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ls / lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(l) != 80 && !strings.HasSuffix(l, "]") {
			t.Errorf("line not 80 wide: %q", l)
		}
	}
	// One request per list endpoint, none per disk or host.
	reqs := f.requests()
	if len(reqs) > 8 {
		t.Errorf("ls / made %d requests: %v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if strings.Contains(r, "/disks/") || strings.Contains(r, "/hosts/") {
			t.Errorf("ls / read one entity: %s", r)
		}
	}
}

func TestLsDepthAndSubtree(t *testing.T) {
	f, e, _, _ := fixture(t)
	out := mustRun(t, e, "ls / 1")
	if n := strings.Count(out, "o- "); n != 4 {
		t.Errorf("ls / 1 shows %d nodes:\n%s", n, out)
	}
	if !strings.Contains(out, "[180G, Disks: 2]") || !strings.Contains(out, "[DiscoveryAuth: None, Targets: 1]") {
		t.Errorf("ls / 1 lacks child summaries:\n%s", out)
	}
	before := len(f.requests())
	out = mustRun(t, e, "ls /disks")
	if got := f.requests()[before:]; len(got) != 1 || got[0] != "GET /disks" {
		t.Errorf("ls /disks requests: %v", got)
	}
	if !strings.HasPrefix(out, "o- disks ") {
		t.Errorf("ls /disks:\n%s", out)
	}
	// A path before the command runs it there; a bare path lists in batch mode.
	out2 := mustRun(t, e, "/disks ls")
	out3 := mustRun(t, e, "/disks")
	if out2 != out || out3 != out {
		t.Errorf("/disks ls and /disks differ from ls /disks:\n%s\n%s", out2, out3)
	}
}

func TestLsCephUnavailable(t *testing.T) {
	f, e, _, _ := fixture(t)
	f.noCeph = true
	out := mustRun(t, e, "ls /")
	if !strings.Contains(out, "[unavailable: gateway gw1 has no Ceph client]") {
		t.Errorf("ls / without Ceph:\n%s", out)
	}
}

func TestLsJSON(t *testing.T) {
	_, e, _, _ := fixture(t)
	e.Format = FormatJSON
	out := mustRun(t, e, "ls /")
	var doc struct {
		Disks   []model.Disk            `json:"disks"`
		Targets []model.Target          `json:"targets"`
		Hosts   map[string][]model.Host `json:"hosts"`
		Cluster *model.Cluster          `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ls -o json: %v\n%s", err, out)
	}
	if len(doc.Disks) != 2 || len(doc.Targets) != 1 || len(doc.Hosts[tIQN]) != 1 || doc.Cluster.Health != "HEALTH_OK" {
		t.Errorf("ls -o json: %+v", doc)
	}
	e.Format = FormatYAML
	out = mustRun(t, e, "info /disks/rbd/disk_1")
	if out2 := mustRun(t, e, "/disks/rbd/disk_1 info"); out2 != out {
		t.Errorf("info <path> and <path> info differ")
	}
	if !strings.Contains(out, "id: rbd/disk_1\n") || !strings.Contains(out, "size: 96636764160\n") {
		t.Errorf("info -o yaml:\n%s", out)
	}
}

func TestDisksCreateForms(t *testing.T) {
	for _, line := range []string{
		"/disks create pool=rbd image=disk_3 size=90G",
		"/disks create rbd/disk_3 90G",
		"/disks create rbd disk_3 90G",
	} {
		t.Run(line, func(t *testing.T) {
			f, e, _, _ := fixture(t)
			out := mustRun(t, e, line)
			if !strings.Contains(out, "ok: created disk rbd/disk_3 (90G)") {
				t.Errorf("output: %s", out)
			}
			if !hasRequest(f.requests(), "PUT /disks/rbd/disk_3") || f.lastBody() != `{"size":96636764160}` {
				t.Errorf("requests %v body %s", f.requests(), f.lastBody())
			}
		})
	}
}

func TestDisksCreateCountAndErrors(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/disks")
	out := mustRun(t, e, "create rbd/vol 1G count=3")
	if !strings.Contains(out, "created 3 disks rbd/vol1..rbd/vol3") {
		t.Errorf("count: %s", out)
	}
	for _, id := range []string{"rbd/vol1", "rbd/vol2", "rbd/vol3"} {
		if _, ok := f.disks[id]; !ok {
			t.Errorf("%s not created", id)
		}
	}
	if out, code := run(t, e, "create rbd/disk_1 90G"); code != ExitConflict {
		t.Errorf("create of an existing disk: exit %d (%s)", code, out)
	}
	if out, code := run(t, e, "frobnicate"); code != ExitUsage || !strings.Contains(out, "unknown command") {
		t.Errorf("frobnicate: exit %d (%s)", code, out)
	}
	// Usage errors are found before any request.
	n := len(f.requests())
	for _, line := range []string{"create rbd/x 90Q", "create rbd/x", "create rbd/x 1G wwn=abc count=2", "create rbd/x 1G block_size=1024", "resize rbd/disk_1", "/x ls",
		"create rbd/x 1G physical_block_size=1000", "create rbd/x 1G physical_block_size=4k", "create rbd/x 1G block_size=4096 physical_block_size=512",
		"attach rbd/free_img physical_block_size=3"} {
		if out, code := run(t, e, line); code != ExitUsage {
			t.Errorf("%s: exit %d, want %d (%s)", line, code, ExitUsage, out)
		}
	}
	if got := f.requests()[n:]; len(got) != 0 {
		t.Errorf("usage errors made requests: %v", got)
	}
}

func TestDisksPhysicalBlockSize(t *testing.T) {
	f, e, _, _ := fixture(t)
	mustRun(t, e, "/disks create rbd/disk_3 1G block_size=512 physical_block_size=8192")
	if f.lastBody() != `{"size":1073741824,"block_size":512,"physical_block_size":8192}` {
		t.Errorf("create body %s", f.lastBody())
	}
	if out := mustRun(t, e, "/disks info rbd/disk_3"); !strings.Contains(out, "physical block size: 8192\n") {
		t.Errorf("info:\n%s", out)
	}
	mustRun(t, e, "/disks attach rbd/free_img physical_block_size=4096")
	if f.lastBody() != `{"physical_block_size":4096}` {
		t.Errorf("attach body %s", f.lastBody())
	}
	// A resize leaves it as it is (the API keeps what is not sent).
	mustRun(t, e, "/disks resize rbd/disk_3 2G")
	if strings.Contains(f.lastBody(), "physical") {
		t.Errorf("resize body %s", f.lastBody())
	}
	e.Cwd = mustResolve(t, Root, "/disks")
	var names []string
	for _, s := range e.Complete("create rbd/x 1G physical_block_size=") {
		names = append(names, s.Text)
	}
	if len(names) == 0 || names[0] != "physical_block_size=4096" {
		t.Errorf("completion %v", names)
	}
}

func TestDisksAttachResizeDeleteDetach(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/disks")
	mustRun(t, e, "attach rbd/free_img")
	if f.lastBody() != `{}` {
		t.Errorf("attach body %s", f.lastBody())
	}
	if _, code := run(t, e, "attach pool=rbd image=missing"); code != ExitNotFound {
		t.Errorf("attach of a missing image: exit %d", code)
	}
	// resize keeps read_only and sends If-Match.
	d := f.disks["rbd/disk_2"]
	d.ReadOnly = true
	f.disks["rbd/disk_2"] = d
	f.fail412 = 1
	out := mustRun(t, e, "resize rbd/disk_2 100G")
	if !strings.Contains(out, "disk rbd/disk_2 is now 100G") || f.disks["rbd/disk_2"].Size != 100*gib || !f.disks["rbd/disk_2"].ReadOnly {
		t.Errorf("resize: %s %+v", out, f.disks["rbd/disk_2"])
	}
	if _, code := run(t, e, "resize rbd/disk_2 10G"); code != ExitUsage {
		t.Errorf("shrink: exit %d", code)
	}
	if _, code := run(t, e, "delete rbd/disk_1"); code != ExitConflict {
		t.Errorf("delete of a mapped disk: exit %d", code)
	}
	mustRun(t, e, "detach rbd/free_img")
	mustRun(t, e, "delete rbd/disk_2")
	reqs := f.requests()
	if !hasRequest(reqs, "DELETE /disks/rbd/free_img") || hasRequest(reqs, "DELETE /disks/rbd/free_img?remove_image") {
		t.Errorf("detach must keep the image: %v", reqs)
	}
	if !hasRequest(reqs, "DELETE /disks/rbd/disk_2?remove_image=true") {
		t.Errorf("delete must remove the image: %v", reqs)
	}
	if _, code := run(t, e, "delete rbd/nope"); code != ExitNotFound {
		t.Errorf("delete of a missing disk: exit %d", code)
	}
}

func TestSnapshots(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/disks/rbd/disk_1")
	mustRun(t, e, "snapshot create before-upgrade")
	out := mustRun(t, e, "snapshot list")
	if !strings.Contains(out, "before-upgrade") {
		t.Errorf("list: %s", out)
	}
	mustRun(t, e, "snapshot delete before-upgrade")
	if !hasRequest(f.requests(), "DELETE /disks/rbd/disk_1/snapshots/before-upgrade") {
		t.Errorf("requests: %v", f.requests())
	}
	if _, code := run(t, e, "snapshot create a@b"); code != ExitUsage {
		t.Errorf("bad snapshot name accepted")
	}
	if _, code := run(t, e, "snapshot rollback x"); code != ExitUsage {
		t.Errorf("unknown action accepted")
	}
}

func TestTargetsAndGateways(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Interactive = true
	mustRun(t, e, "cd /iscsi-targets")
	const t2 = "iqn.2024-01.io.example:t2"
	mustRun(t, e, "create IQN.2024-01.io.example:T2")
	if _, ok := f.targets[t2]; !ok {
		t.Fatalf("target not created canonical: %v", f.requests())
	}
	if out, code := run(t, e, "create "+t2); code != ExitConflict || !strings.Contains(out, "target "+t2+" already exists") {
		t.Errorf("second create: exit %d: %s", code, out)
	}
	// A create is one create-only write (If-None-Match: *), no read first.
	for _, r := range f.requests() {
		if strings.HasPrefix(r, "GET /targets/"+t2) {
			t.Errorf("create read the target first: %v", f.requests())
		}
	}
	if got := f.createOnly; len(got) != 2 || got[0] != "PUT /targets/"+t2 || got[1] != got[0] {
		t.Errorf("create-only writes %v", got)
	}
	if _, code := run(t, e, "create not-an-iqn"); code != ExitUsage {
		t.Errorf("bad iqn: exit %d", code)
	}
	mustRun(t, e, "cd "+t2+"/gateways")
	if e.Cwd.String() != "/iscsi-targets/"+t2+"/gateways" {
		t.Errorf("cwd %s", e.Cwd)
	}
	mustRun(t, e, "create ceph-gw-3 10.172.19.23")
	if f.lastBody() != `{"portals":["10.172.19.23:3260"]}` {
		t.Errorf("gateway create body %s", f.lastBody())
	}
	mustRun(t, e, "create gw1") // joins as registered
	if _, code := run(t, e, "create gw2 10.9.9.9"); code != ExitConflict {
		t.Errorf("portal mismatch: exit %d", code)
	}
	if got := f.targets[t2].Gateways; strings.Join(got, ",") != "ceph-gw-3,gw1" {
		t.Errorf("gateways %v", got)
	}
	mustRun(t, e, "delete ceph-gw-3")
	if _, code := run(t, e, "delete ceph-gw-3"); code != ExitNotFound {
		t.Errorf("second delete: exit %d", code)
	}
	// The last gateway of a target with disks needs confirm=true.
	e.Cwd = mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/gateways")
	mustRun(t, e, "delete gw2")
	if out, code := run(t, e, "delete gw1"); code != ExitUsage || !strings.Contains(out, "confirm=true") {
		t.Errorf("last gateway: exit %d %s", code, out)
	}
	mustRun(t, e, "delete gw1 confirm=true")
	mustRun(t, e, "cd /iscsi-targets")
	mustRun(t, e, "delete "+t2)
	if _, ok := f.targets[t2]; ok {
		t.Errorf("target not deleted")
	}
}

func TestAuth(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/iscsi-targets")
	mustRun(t, e, "discovery_auth username=disc password=discsecret12")
	if f.disc == nil || f.disc.User != "disc" {
		t.Fatalf("discovery auth %+v", f.disc)
	}
	if _, code := run(t, e, "discovery_auth username=disc password=short"); code != ExitUsage {
		t.Errorf("short secret: exit %d", code)
	}
	// Errors name gwcli's parameters, not the configuration file's fields.
	for line, want := range map[string]string{
		"discovery_auth username=disc password=short":     "discovery_auth: password must be 12 to 16 characters (is 5)",
		"discovery_auth u s123456789012 mu s123456789012": "discovery_auth: mutual_password must differ from password",
		"discovery_auth u s123456789012 mu":               "mutual CHAP needs both mutual_username and mutual_password",
	} {
		if out, code := run(t, e, line); code != ExitUsage || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d: %s; want %q", line, code, out, want)
		}
	}
	if out := mustRun(t, e, "discovery_auth username=disc password=discsecret12"); !strings.Contains(out, "ok: discovery sessions need CHAP (user disc)") {
		t.Errorf("discovery_auth: %s", out)
	}
	mustRun(t, e, "discovery_auth nochap")
	if f.disc != nil {
		t.Errorf("nochap left %+v", f.disc)
	}
	// Target CHAP keeps the gateways (read-modify-write).
	mustRun(t, e, "cd "+tIQN)
	mustRun(t, e, "auth username=tgt password=tgtsecret123")
	tg := f.targets[tIQN]
	if tg.CHAP == nil || tg.CHAP.User != "tgt" || strings.Join(tg.Gateways, ",") != "gw1,gw2" {
		t.Errorf("target after auth: %+v", tg)
	}
	out := mustRun(t, e, "info")
	if !strings.Contains(out, "CHAP") || strings.Contains(out, "tgtsecret123") {
		t.Errorf("info: %s", out)
	}
	// Host CHAP keeps its LUNs.
	mustRun(t, e, "cd hosts/"+hIQN)
	if out := mustRun(t, e, "auth alice alicesecret1 bob bobsecret123"); !strings.Contains(out, "uses mutual CHAP (user alice)") {
		t.Errorf("host auth: %s", out)
	}
	h := f.hosts[tIQN][hIQN]
	if h.CHAP == nil || h.CHAP.MutualUser != "bob" || len(h.LUNs) != 1 {
		t.Errorf("host after auth: %+v", h)
	}
	// hosts: auth nochap clears every host's; disable_acl sets allow_any.
	mustRun(t, e, "cd ..")
	out = mustRun(t, e, "auth nochap")
	if f.hosts[tIQN][hIQN].CHAP != nil || !strings.Contains(out, "removed CHAP from 1 host") {
		t.Errorf("nochap: %s", out)
	}
	if len(f.hosts[tIQN][hIQN].LUNs) != 1 {
		t.Errorf("nochap dropped the LUNs")
	}
	mustRun(t, e, "auth disable_acl")
	if !f.targets[tIQN].AllowAnyInitiator || f.targets[tIQN].CHAP == nil {
		t.Errorf("disable_acl: %+v", f.targets[tIQN])
	}
}

func TestHostDiskAddMapsThenAdds(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Interactive = true
	mustRun(t, e, "cd /iscsi-targets/"+tIQN+"/hosts")
	const c2 = "iqn.1994-05.com.redhat:client2"
	mustRun(t, e, "create "+c2)
	if e.Cwd.String() != "/iscsi-targets/"+tIQN+"/hosts/"+c2 {
		t.Fatalf("create did not cd into the host: %s", e.Cwd)
	}
	if got := f.hosts[tIQN][c2]; got == nil || len(got.LUNs) != 0 {
		t.Fatalf("host %+v", got)
	}
	if got := f.createOnly; len(got) != 1 || got[0] != "PUT /targets/"+tIQN+"/hosts/"+c2 {
		t.Errorf("create-only writes %v", got)
	}
	e.Cwd = mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts")
	if out, code := run(t, e, "create "+c2); code != ExitConflict || !strings.Contains(out, "already exists") {
		t.Errorf("second create: exit %d: %s", code, out)
	}
	e.Cwd = mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts/"+c2)
	// The id of the LUN the map creates comes from the 201's Location.
	f.lunKeyOnlyInLocation = true
	// disk_2 is not mapped: disk add maps it (LUN 1), then adds it with If-Match.
	f.fail412 = 1
	out := mustRun(t, e, "disk add rbd/disk_2")
	if !strings.Contains(out, "sees rbd/disk_2 as LUN 1") {
		t.Errorf("disk add: %s", out)
	}
	if got := f.hosts[tIQN][c2].LUNs; len(got) != 1 || got[0] != 1 {
		t.Errorf("host LUNs %v", got)
	}
	if !hasRequest(f.requests(), "POST /targets/"+tIQN+"/luns") {
		t.Errorf("no mapping request: %v", f.requests())
	}
	for i, r := range f.requests() {
		if strings.HasPrefix(r, "POST /targets/"+tIQN+"/luns") && hasRequest(f.requests()[i:], "GET /targets/"+tIQN+"/luns") {
			t.Errorf("read the LUNs after mapping instead of the Location: %v", f.requests()[i:])
		}
	}
	f.lunKeyOnlyInLocation = false
	// Already mapped disk: no new mapping.
	n := len(f.requests())
	mustRun(t, e, "disk add rbd/disk_1")
	if hasRequest(f.requests()[n:], "POST ") {
		t.Errorf("mapped twice: %v", f.requests()[n:])
	}
	if got := f.hosts[tIQN][c2].LUNs; len(got) != 2 {
		t.Errorf("host LUNs %v", got)
	}
	out = mustRun(t, e, "disk add rbd/disk_1")
	if !strings.Contains(out, "already sees") {
		t.Errorf("second add: %s", out)
	}
	mustRun(t, e, "disk remove rbd/disk_2")
	if got := f.hosts[tIQN][c2].LUNs; len(got) != 1 || got[0] != 0 {
		t.Errorf("after remove %v", got)
	}
	if _, code := run(t, e, "disk remove rbd/disk_2"); code != ExitNotFound {
		t.Errorf("remove twice: exit %d", code)
	}
	if _, code := run(t, e, "disk add rbd/none"); code != ExitNotFound {
		t.Errorf("missing disk: exit %d", code)
	}
	out = mustRun(t, e, "info")
	if !strings.Contains(out, "luns:") || !strings.Contains(out, "logged in:  no") {
		t.Errorf("info: %s", out)
	}
	mustRun(t, e, "cd ..")
	mustRun(t, e, "delete "+c2)
}

func TestHostInfoLoggedIn(t *testing.T) {
	_, e, _, _ := fixture(t)
	out := mustRun(t, e, "/iscsi-targets/"+tIQN+"/hosts/"+hIQN+" info")
	for _, want := range []string{"client_iqn:", hIQN, "logged in:  gw1", "10.0.9.9:50000 via gw1"} {
		if !strings.Contains(out, want) {
			t.Errorf("host info lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, e, "/iscsi-targets/"+tIQN+" sessions")
	if !strings.Contains(out, "10.0.9.9:50000") || !strings.Contains(out, "1h30m") {
		t.Errorf("sessions:\n%s", out)
	}
}

// TestSessionsOfGateway: gateway= keeps one gateway's sessions, and a
// name that is no gateway is not found (exit 4), as in top, rather than
// "no sessions".
func TestSessionsOfGateway(t *testing.T) {
	_, e, _, _ := fixture(t)
	if out := mustRun(t, e, "sessions gateway=gw1"); !strings.Contains(out, "10.0.9.9:50000") {
		t.Errorf("sessions gateway=gw1:\n%s", out)
	}
	if out := mustRun(t, e, "sessions gateway=gw2"); !strings.Contains(out, "no sessions") {
		t.Errorf("sessions gateway=gw2:\n%s", out)
	}
	out, code := run(t, e, "sessions gateway=gw-typo")
	if code != ExitNotFound || !strings.Contains(out, `gateway "gw-typo" does not exist`) {
		t.Errorf("sessions of an unknown gateway: exit %d: %s", code, out)
	}
}

func TestHostGroups(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Interactive = true
	const c2 = "iqn.1994-05.com.redhat:client2"
	f.addHost(tIQN, c2)
	mustRun(t, e, "cd /iscsi-targets/"+tIQN+"/host-groups")
	mustRun(t, e, "create dbs")
	if e.Cwd.Kind != KGroup {
		t.Fatalf("create did not cd into the group: %s", e.Cwd)
	}
	mustRun(t, e, "host add "+c2)
	mustRun(t, e, "disk add rbd/disk_2")
	g := f.groups[tIQN]["dbs"]
	if strings.Join(g.Members, ",") != c2 || len(g.LUNs) != 1 || g.LUNs[0] != 1 {
		t.Errorf("group %+v", g)
	}
	out := mustRun(t, e, "ls")
	if !strings.Contains(out, "[Hosts: 1, Disks: 1]") || !strings.Contains(out, "o- rbd/disk_2 ") {
		t.Errorf("ls group:\n%s", out)
	}
	// A grouped host's own disk add is refused.
	if _, code := run(t, e, "/iscsi-targets/"+tIQN+"/hosts/"+c2+" disk add rbd/disk_1"); code != ExitConflict {
		t.Errorf("grouped host disk add: exit %d", code)
	}
	// A host with its own LUNs cannot join: gwcli says which and where to
	// drop them (exit 3, as a grouped host's disk add), before any write;
	// a host that does not exist is not found (the API's answer to both
	// is invalid, exit 1).
	n := len(f.requests())
	out, code := run(t, e, "host add "+hIQN)
	if code != ExitConflict || !strings.Contains(out, "host "+hIQN+" has its own disks (LUNs 0)") || !strings.Contains(out, "disk remove them in /iscsi-targets/"+tIQN+"/hosts/"+hIQN) {
		t.Errorf("host with LUNs joined: exit %d: %s", code, out)
	}
	out, code = run(t, e, "host add iqn.1994-05.com.redhat:nobody")
	if code != ExitNotFound || !strings.Contains(out, "host iqn.1994-05.com.redhat:nobody does not exist in "+tIQN) {
		t.Errorf("missing host joined: exit %d: %s", code, out)
	}
	for _, r := range f.requests()[n:] {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("refused host add wrote: %s", r)
		}
	}
	out = mustRun(t, e, "host remove "+c2)
	if !strings.Contains(out, "keeps LUNs 1") || len(f.hosts[tIQN][c2].LUNs) != 1 {
		t.Errorf("host remove: %s %+v", out, f.hosts[tIQN][c2])
	}
	mustRun(t, e, "disk remove rbd/disk_2")
	mustRun(t, e, ".. delete dbs") // deleting the node we are in moves us up
	if _, ok := f.groups[tIQN]["dbs"]; ok {
		t.Error("group not deleted")
	}
	if e.Cwd.Kind != KGroups {
		t.Errorf("still in a deleted group: %s", e.Cwd)
	}
}

func TestTargetDisks(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks")
	out := mustRun(t, e, "add rbd/disk_2 5")
	if !strings.Contains(out, "as LUN 5") || f.disks["rbd/disk_2"].Mapping.LUN != 5 {
		t.Errorf("add: %s", out)
	}
	out = mustRun(t, e, "add rbd/disk_2")
	if !strings.Contains(out, "already mapped") {
		t.Errorf("add again: %s", out)
	}
	mustRun(t, e, "delete rbd/disk_2")
	if !hasRequest(f.requests(), "DELETE /targets/"+tIQN+"/luns/5") {
		t.Errorf("requests: %v", f.requests())
	}
	if _, code := run(t, e, "delete rbd/disk_2"); code != ExitNotFound {
		t.Errorf("delete unmapped: exit %d", code)
	}
}

func TestDryRunAndWait(t *testing.T) {
	f, e, _, _ := fixture(t, func(o *client.Options) { o.DryRun = true })
	out := mustRun(t, e, "/disks create rbd/disk_9 10G")
	if !strings.Contains(out, "dry run, nothing changed") || !strings.Contains(out, "would put disks/rbd/disk_9") {
		t.Errorf("dry run: %s", out)
	}
	if _, ok := f.disks["rbd/disk_9"]; ok || !hasRequest(f.requests(), "PUT /disks/rbd/disk_9?dry_run=true") {
		t.Errorf("dry run changed something: %v", f.requests())
	}
	out = mustRun(t, e, "/iscsi-targets/"+tIQN+"/hosts/"+hIQN+" disk add rbd/disk_2")
	if !strings.Contains(out, "mapped rbd/disk_2 as LUN 1, then let host") || f.disks["rbd/disk_2"].Mapping != nil {
		t.Errorf("dry run disk add: %s", out)
	}

	f2, e2, _, _ := fixture(t, func(o *client.Options) { o.Wait = true })
	out = mustRun(t, e2, "/disks create rbd/disk_9 10G")
	if !strings.Contains(out, "(applied on gw1)") || !hasRequest(f2.requests(), "PUT /disks/rbd/disk_9?wait=applied") {
		t.Errorf("wait: %s %v", out, f2.requests())
	}
	// Gateways that are down are named.
	f2.downOnWait = []string{"gw2"}
	out = mustRun(t, e2, "/disks resize rbd/disk_9 11G")
	if !strings.Contains(out, "(applied on gw1; down: gw2, which applies it when up)") {
		t.Errorf("wait with a gateway down: %s", out)
	}
}

func TestErrors(t *testing.T) {
	f, e, _, _ := fixture(t)
	cases := []struct {
		line string
		code int
		msg  string
	}{
		{"/nope ls", ExitUsage, "no such path"},
		{"/disks frob", ExitUsage, `unknown command "frob"`},
		// A mistyped command with arguments is not a command of a child
		// named after the typo.
		{"/disks creat pool=rbd image=x size=1G", ExitUsage, `unknown command "creat" at /disks`},
		{"/iscsi-targets/" + tIQN + "/gateways creat gw9 10.0.0.9", ExitUsage, `unknown command "creat" at /iscsi-targets/` + tIQN + `/gateways (did you mean "create"?); commands there: create`},
		{"/iscsi-targets/" + tIQN + "/hosts creat " + "iqn.1994-05.com.redhat:x", ExitUsage, `unknown command "creat"`},
		{"/disks delet rbd/disk_1", ExitUsage, `unknown command "delet" at /disks (did you mean "delete"?)`},
		{"/disks xyzzy", ExitUsage, `commands there: create`},
		{"ls /iscsi-targets/iqn.2003-01.com.x:missing", ExitNotFound, "target iqn.2003-01.com.x:missing does not exist"},
		{"cd /disks/rbd/nothere", ExitNotFound, "does not exist"},
		{"/iscsi-targets create " + tIQN, ExitConflict, "already exists"},
		{"help frob", ExitUsage, "no command"},
	}
	for _, c := range cases {
		out, code := run(t, e, c.line)
		if code != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("%s: exit %d %q, want %d containing %q", c.line, code, out, c.code, c.msg)
		}
	}
	// A wrong token: one line naming the token.
	f.token = "other"
	_, err := e.Client.Disks(context.Background())
	if err == nil || !strings.Contains(err.Error(), "token rejected by http://127.0.0.1") || ExitCode(err) != ExitError {
		t.Errorf("bad token: %v", err)
	}
}

func TestExportHelpPwd(t *testing.T) {
	_, e, _, _ := fixture(t)
	out := mustRun(t, e, "export")
	if !strings.Contains(out, `"version": 1`) {
		t.Errorf("export: %s", out)
	}
	out = mustRun(t, e, "/disks help")
	if !strings.Contains(out, "create pool=<pool>") || !strings.Contains(out, "detach") {
		t.Errorf("help: %s", out)
	}
	if out := mustRun(t, e, "help create"); !strings.Contains(out, "create <target_iqn>") {
		t.Errorf("help create at /: %s", out)
	}
	if _, code := run(t, e, "help attach"); code != ExitUsage {
		t.Errorf("help attach at /: exit %d", code)
	}
	out = mustRun(t, e, "/disks help create")
	if !strings.Contains(out, "size=<value>") {
		t.Errorf("help create: %s", out)
	}
	e.Interactive = true
	mustRun(t, e, "cd /disks/rbd/disk_1")
	if got := mustRun(t, e, "pwd"); got != "/disks/rbd/disk_1\n" {
		t.Errorf("pwd %q", got)
	}
	mustRun(t, e, "cd -")
	if e.Cwd.String() != "/" {
		t.Errorf("cd - went to %s", e.Cwd)
	}
	mustRun(t, e, "/disks/rbd") // a bare path cd's in the shell
	if e.Cwd.String() != "/disks/rbd" {
		t.Errorf("bare path went to %s", e.Cwd)
	}
}

func TestScript(t *testing.T) {
	f, e, _, _ := fixture(t)
	script := `# walkthrough
cd /iscsi-targets
create iqn.2024-01.io.example:t2   # a second target
cd iqn.2024-01.io.example:t2/gateways
create ceph-gw-1 10.172.19.21

cd /disks
create pool=rbd image=disk_3 size=90G
create pool=rbd image=disk_4 size=90Q
create pool=rbd image=disk_5 size=1G
`
	err := e.RunScript(context.Background(), strings.NewReader(script), "setup.gw")
	if err == nil || !strings.Contains(err.Error(), "setup.gw:9: create:") || ExitCode(err) != ExitUsage {
		t.Fatalf("script error %v", err)
	}
	if _, ok := f.disks["rbd/disk_3"]; !ok {
		t.Error("line 8 did not run")
	}
	if _, ok := f.disks["rbd/disk_5"]; ok {
		t.Error("the script went on after the error")
	}
}

// TestSeedWalkthroughAsTyped runs the gwcli steps of a ceph-iscsi guide
// exactly as its author typed them: the target is created at / and its
// gateways node reached from / by the target's name.
func TestSeedWalkthroughAsTyped(t *testing.T) {
	f := newFake(t)
	f.pools = []model.Pool{{Name: "rbd", Type: "replicated", Size: 3, RBD: true, MaxAvail: 1 << 40}}
	c, _ := f.start()
	var out, errb bytes.Buffer
	e := NewEnv(c, &out, &errb)
	script := `create iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw
cd iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw/gateways
create ceph-gw-1 10.172.19.21
create ceph-gw-2 10.172.19.22
cd /disks
create pool=rbd image=disk_1 size=90G
cd /iscsi-target/iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw/hosts
create iqn.1994-05.com.redhat:rh7-client
disk add rbd/disk_1
`
	if err := e.RunScript(context.Background(), strings.NewReader(script), "seed"); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	tg := f.targets[tIQN]
	if tg == nil || strings.Join(tg.Gateways, ",") != "ceph-gw-1,ceph-gw-2" || len(tg.LUNs) != 1 || tg.LUNs[0].Disk != "rbd/disk_1" {
		t.Fatalf("target %+v", tg)
	}
	if h := f.hosts[tIQN][hIQN]; h == nil || len(h.LUNs) != 1 || h.LUNs[0] != 0 {
		t.Fatalf("host %+v", h)
	}
	if e.Cwd.String() != "/iscsi-targets/"+tIQN+"/hosts/"+hIQN {
		t.Errorf("cwd %s", e.Cwd)
	}
	for _, w := range []string{"ok: created target " + tIQN, "ok: gateway ceph-gw-2 serves " + tIQN + " on 10.172.19.22:3260",
		"ok: created disk rbd/disk_1 (90G)", "ok: created host " + hIQN, "ok: host " + hIQN + " sees rbd/disk_1 as LUN 0"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	// At /, create takes only a target's name.
	e.Cwd = Root
	if err := e.Line(context.Background(), "create pool=rbd image=disk_2 size=1G"); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "/disks") {
		t.Errorf("create of a disk at /: %v", err)
	}
	if err := e.Line(context.Background(), "cd "+tIQN); err != nil || e.Cwd.String() != "/iscsi-targets/"+tIQN {
		t.Errorf("cd <iqn> at /: %v %s", err, e.Cwd)
	}
}

// TestDeleteLargeTarget: a target with LUN maps, hosts and groups is
// deleted with one DELETE of the target, whatever its size: the API
// deletes it in parts when one transaction cannot hold it.
func TestDeleteLargeTarget(t *testing.T) {
	f, e, _, _ := fixture(t)
	f.addDisk("rbd", "disk_3", gib)
	f.mapLUN(tIQN, "rbd/disk_3", 1)
	f.addHost(tIQN, "iqn.1994-05.com.redhat:c2", 1)
	f.groups[tIQN]["g1"] = &model.HostGroup{Name: "g1", Members: []string{}, LUNs: []uint64{}}
	e.Cwd = mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts")
	before := len(f.requests())
	out := mustRun(t, e, "/iscsi-targets delete "+tIQN)
	if !strings.Contains(out, "ok: deleted target "+tIQN) {
		t.Errorf("output: %s", out)
	}
	var writes []string
	for _, r := range f.requests()[before:] {
		if !strings.HasPrefix(r, "GET ") {
			writes = append(writes, r)
		}
	}
	if len(writes) != 1 || writes[0] != "DELETE /targets/"+tIQN {
		t.Errorf("writes %q, want the target's DELETE alone", writes)
	}
	if _, ok := f.targets[tIQN]; ok || f.disks["rbd/disk_1"].Mapping != nil {
		t.Errorf("target left: %+v", f.targets[tIQN])
	}
	if e.Cwd.String() != "/iscsi-targets" {
		t.Errorf("cwd %s", e.Cwd)
	}
}

func TestClosestCommand(t *testing.T) {
	names := []string{"create", "delete", "info", "ls", "cd"}
	cases := []struct{ word, want string }{
		{"creat", "create"},
		{"craete", "create"},
		{"delte", "delete"},
		{"inf", "info"},
		{"sl", ""}, // two edits of a two-letter name is a different word
		{"frobnicate", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := closest(c.word, names); got != c.want {
			t.Errorf("closest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}
