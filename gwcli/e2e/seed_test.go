package e2e

// The gwcli steps of seed document 001 (a ceph-iscsi guide), run as its
// author typed them against the real gateways, in batch mode and in the
// interactive shell; then an initiator lists the disk through both
// portals with libiscsi's iscsi-ls.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rbdgw/rbdgw/gwcli/internal/ptytest"
)

// seedNames are the names of the seed's walkthrough: its own on a
// cluster this test started, with a random suffix on somebody's cluster.
type seedNames struct {
	target, host, image string
}

func (n seedNames) disk() string { return "rbd/" + n.image }

func names() seedNames {
	n := seedNames{"iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw", "iqn.1994-05.com.redhat:rh7-client", "disk_1"}
	if !env.own {
		sfx := fmt.Sprintf("%04x", rand.IntN(1<<16))
		n.target += "-" + sfx
		n.host += "-" + sfx
		n.image += "_" + sfx
	}
	return n
}

// seedSize is the seed's disk size: a thin image costs nothing until
// written, so 90G fits the micro cluster.
const seedSize = "90G"

// seedScript is the seed's gwcli session as typed there, with the test's
// gateways and their portals for ceph-gw-1 10.172.19.21 and ceph-gw-2
// 10.172.19.22.
func seedScript(n seedNames) string {
	return fmt.Sprintf(`create %[1]s
cd %[1]s/gateways
create %[2]s %[3]s
create %[4]s %[5]s
cd /disks
create pool=rbd image=%[6]s size=%[7]s
cd /iscsi-target/%[1]s/hosts
create %[8]s
disk add rbd/%[6]s
`, n.target, env.gateways[0], portal(0), env.gateways[1], portal(1), n.image, seedSize, n.host)
}

// seedCleanup removes what the walkthrough made, as an admin would.
func seedCleanup(t *testing.T, n seedNames) {
	t.Helper()
	gw(t, "/iscsi-targets/"+n.target+"/hosts", "delete", n.host)
	gw(t, "/iscsi-targets", "delete", n.target)
	gw(t, "/disks", "delete", n.disk())
}

func needSeed(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
	if len(env.gateways) < 2 {
		t.Skipf("the cluster at %s has %d gateways; the walkthrough needs two", env.url, len(env.gateways))
	}
	if !env.own {
		t.Skip("the walkthrough registers the gateways' portals; run it on a cluster this test starts")
	}
}

// gwStdin runs gwcli in batch mode with stdin.
func gwStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.gwcli, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "RBDGW_API_URL="+env.url, "RBDGW_API_TOKEN="+env.token, "HOME="+home, "XDG_CONFIG_HOME="+home)
	cmd.Stdin = strings.NewReader(stdin)
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

// iscsiLS lists what initiator ini sees through a portal: iscsi-ls -s -i.
func iscsiLS(t *testing.T, ini, portal string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iscsi-ls", "-s", "-i", ini, "iscsi://"+portal).CombinedOutput()
	return string(out), err
}

// checkISCSILS asserts that through both portals ini sees the target with
// the disk as LUN 0 of 90 GiB. The gateways apply a change a moment after
// it is committed (unless --wait was given), so it polls a while.
func checkISCSILS(t *testing.T, n seedNames) {
	t.Helper()
	if _, err := exec.LookPath("iscsi-ls"); err != nil {
		t.Log("iscsi-ls not installed (apt-get install libiscsi-bin): the initiator's view is not checked")
		return
	}
	for i := range 2 {
		p := portal(i)
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := iscsiLS(t, n.host, p)
			// iscsi-ls shows the size rounded down from the last LBA:
			// 89G for 90 GiB; iscsi-readcapacity16 below checks it exactly.
			ok := err == nil && strings.Contains(out, "Target:"+n.target+" Portal:"+p+",") && strings.Contains(out, "Lun:0 ") && strings.Contains(out, "Type:DIRECT_ACCESS (Size:")
			if ok {
				t.Logf("iscsi-ls -s -i %s iscsi://%s:\n%s", n.host, p, out)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("iscsi-ls -s -i %s iscsi://%s never listed %s LUN 0 (%s): %v\n%s", n.host, p, n.target, seedSize, err, out)
			}
			time.Sleep(300 * time.Millisecond)
		}
		if _, err := exec.LookPath("iscsi-readcapacity16"); err != nil {
			continue
		}
		out, err := exec.Command("iscsi-readcapacity16", "-i", n.host, "iscsi://"+p+"/"+n.target+"/0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Total size:96636764160") {
			t.Errorf("iscsi-readcapacity16 through %s: %v\n%s", p, err, out)
		}
		t.Logf("iscsi-readcapacity16 through %s:\n%s", p, out)
	}
}

// TestSeed001Batch runs the seed's steps one gwcli command at a time, as
// in a shell script, then as the seed's own lines fed to gwcli on stdin.
func TestSeed001Batch(t *testing.T) {
	needSeed(t)
	n := names()
	t.Cleanup(func() { seedCleanup(t, n) })

	// One command per gwcli run, each step where the seed types it:
	// the target at /, the gateways from / by the target's name.
	out := ok(t, "create", n.target)
	if !contains(out, "ok: created target "+n.target) {
		t.Errorf("create target: %s", out)
	}
	// --wait now waits for the gateways the change adds to the target:
	// the gateway applied it, or (when this create registered it) it was
	// not up yet and is named as down.
	out = ok(t, "--wait", n.target+"/gateways", "create", env.gateways[0], portal(0))
	if !contains(out, "ok: gateway "+env.gateways[0]+" serves "+n.target+" on "+portal(0)) ||
		!contains(out, "(applied on "+env.gateways[0]+")") && !contains(out, "(down: "+env.gateways[0]+", which applies it when up)") {
		t.Errorf("create gateway: %s", out)
	}
	out = ok(t, "--wait", "/iscsi-targets/"+n.target+"/gateways", "create", env.gateways[1], portal(1))
	if !contains(out, "(applied on "+env.gateways[0]+", "+env.gateways[1]+")") {
		t.Errorf("create gateway: %s", out)
	}
	out = ok(t, "/disks", "create", "pool=rbd", "image="+n.image, "size="+seedSize)
	if !contains(out, "ok: created disk "+n.disk()+" ("+seedSize+")") {
		t.Errorf("create disk: %s", out)
	}
	out = ok(t, "/iscsi-target/"+n.target+"/hosts", "create", n.host)
	if !contains(out, "ok: created host "+n.host) {
		t.Errorf("create host: %s", out)
	}
	out = ok(t, "--wait", "/iscsi-target/"+n.target+"/hosts/"+n.host, "disk", "add", n.disk())
	if !contains(out, "ok: host "+n.host+" sees "+n.disk()+" as LUN 0 (applied on "+env.gateways[0]+", "+env.gateways[1]+")") {
		t.Errorf("disk add: %s", out)
	}
	out = ok(t, "ls", "/iscsi-targets/"+n.target)
	for _, w := range []string{"[Up: 2/2, Portals: 2]", "o- " + n.disk() + " ", "o- " + n.host + " ", "Disks: 1(" + seedSize + ")]", "o- lun0 "} {
		if !contains(out, w) {
			t.Errorf("ls lacks %q:\n%s", w, out)
		}
	}
	checkISCSILS(t, n)

	// A gateway that exists joins another target as registered; a
	// different portal is a conflict (exit 3) in one line.
	t2 := n.target + "-second"
	ok(t, "/iscsi-targets", "create", t2)
	defer gw(t, "/iscsi-targets", "delete", t2)
	if out := ok(t, "/iscsi-targets/"+t2+"/gateways", "create", env.gateways[0], portal(0)); !contains(out, "ok: gateway "+env.gateways[0]+" serves "+t2) {
		t.Errorf("join with the same portal: %s", out)
	}
	if out := ok(t, "/iscsi-targets/"+t2+"/gateways", "create", env.gateways[1]); !contains(out, "ok: gateway "+env.gateways[1]+" serves "+t2) {
		t.Errorf("join without a portal: %s", out)
	}
	if out := ok(t, "/iscsi-targets/"+t2+"/gateways", "create", env.gateways[0], portal(0)); !contains(out, "already serves") {
		t.Errorf("join twice: %s", out)
	}
	want(t, 3, "is registered with portals ["+portal(0)+"]", "/iscsi-targets/"+t2+"/gateways", "create", env.gateways[0], "127.0.0.1:3399")
	want(t, 3, "target "+t2+" already exists", "/iscsi-targets", "create", t2)
	want(t, 3, "host "+n.host+" already exists in "+n.target, "/iscsi-targets/"+n.target+"/hosts", "create", n.host)
	ok(t, "/iscsi-targets", "delete", t2)

	// The seed's lines as they are, on gwcli's standard input.
	seedCleanup(t, n)
	sout, serr, code := gwStdin(t, seedScript(n))
	if code != 0 {
		t.Fatalf("gwcli < seed: exit %d\n%s%s", code, sout, serr)
	}
	for _, w := range []string{"ok: created target " + n.target, "ok: gateway " + env.gateways[1] + " serves " + n.target + " on " + portal(1),
		"ok: created disk " + n.disk() + " (" + seedSize + ")", "ok: created host " + n.host, "ok: host " + n.host + " sees " + n.disk() + " as LUN 0"} {
		if !contains(sout, w) {
			t.Errorf("gwcli < seed: no %q in\n%s", w, sout)
		}
	}
	checkISCSILS(t, n)
}

// TestSeed001Interactive types the seed's steps into the shell on a
// pseudo-terminal, with completion of the pool and of image names (one
// made with rbd create and not exported yet), ls /, an error that leaves
// the shell going; then leaves by exit, Ctrl-D and Ctrl-C (SIGINT) and
// checks the terminal each time.
func TestSeed001Interactive(t *testing.T) {
	needSeed(t)
	n := names()
	t.Cleanup(func() { seedCleanup(t, n) })
	spare := fmt.Sprintf("spare_%04x", rand.IntN(1<<16))
	if env.cephConf != "" {
		if out, err := exec.Command("rbd", "-c", env.cephConf, "create", "rbd/"+spare, "--size", "64M").CombinedOutput(); err != nil {
			t.Fatalf("rbd create: %v\n%s", err, out)
		}
		t.Cleanup(func() { exec.Command("rbd", "-c", env.cephConf, "rm", "rbd/"+spare).Run() })
	}

	p := ptytest.Open(t)
	p.Timeout = 60 * time.Second
	before := p.Termios(t)
	cmd := shell(t, p)
	p.Wait(t, "gwcli: "+env.url+"/api/v1 (gateway "+env.gateways[0], "exit or Ctrl-D leaves.", "/> ")

	// ls / shows the tree.
	p.Type(t, "ls /\r")
	p.Wait(t, "o- / ", "o- cluster ", "o- pools ", "o- rbd ", "o- disks ", "o- iscsi-targets ", "[DiscoveryAuth: None, Targets: ")

	// The seed, as typed.
	p.Type(t, "create "+n.target+"\r")
	p.Wait(t, "ok: created target "+n.target)
	p.Type(t, "cd "+n.target+"/gateways\r")
	p.Wait(t, "/iscsi-targets/"+n.target+"/gateways> ")
	p.Type(t, "create "+env.gateways[0]+" "+portal(0)+"\r")
	p.Wait(t, "ok: gateway "+env.gateways[0]+" serves "+n.target)
	p.Type(t, "create "+env.gateways[1]+" "+portal(1)+"\r")
	p.Wait(t, "ok: gateway "+env.gateways[1]+" serves "+n.target)
	p.Type(t, "cd /disks\r")
	p.Wait(t, "/disks> ")
	// Completion offers the pool, with its commit and availability.
	p.Type(t, "create pool=")
	p.Wait(t, "pool=rbd", "Commit:")
	p.Type(t, "rbd image="+n.image+" size="+seedSize+"\r")
	p.Wait(t, "ok: created disk "+n.disk()+" ("+seedSize+")")
	// Image names of the pool: the one rbd create made comes first, not
	// exported yet; the disk just made is one too.
	if env.cephConf != "" {
		p.Type(t, "attach rbd/")
		p.Wait(t, "rbd/"+spare, "image not exported yet", "rbd/"+n.image, "already a disk")
		p.Type(t, "\x03") // Ctrl-C: the line goes, the shell stays
	}
	p.Type(t, "cd /iscsi-target/"+n.target+"/hosts\r")
	p.Wait(t, "/iscsi-targets/"+n.target+"/hosts> ")
	p.Type(t, "create "+n.host+"\r")
	p.Wait(t, "ok: created host "+n.host, "/iscsi-targets/"+n.target+"/hosts/"+n.host+"> ")
	// The disks the host does not see yet, with Tab taking the first.
	p.Type(t, "disk add rbd/"+n.image[:2])
	p.Wait(t, "rbd/"+n.image, seedSize+", not mapped") // the description is cut to the width left by the long prompt
	p.Type(t, "\t")                                    // go-prompt redraws only what changed: the rest of the name
	p.Wait(t, "rbd/"+n.image)
	p.Type(t, "\r")
	p.Wait(t, "ok: host "+n.host+" sees "+n.disk()+" as LUN 0")

	// An error: one line with the API's message, and the shell goes on.
	p.Type(t, "/disks delete "+n.disk()+"\r")
	s := p.Wait(t, "\nerror: ", "disk "+n.disk()+" is mapped as LUN 0 of "+n.target+"\n")
	if c := strings.Count(s, "error:"); c != 1 {
		t.Errorf("error shown %d times:\n%s", c, s)
	}
	p.Type(t, "frob\r")
	p.Wait(t, `error: unknown command "frob" at /iscsi-targets/`+n.target+"/hosts/"+n.host)
	p.Type(t, "pwd\r")
	p.Wait(t, "/iscsi-targets/"+n.target+"/hosts/"+n.host+"\n")
	p.Type(t, "exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit: code %d", code)
	}
	p.CheckCooked(t, before)
	p.CheckStty(t)
	checkISCSILS(t, n)

	// Ctrl-D on an empty line leaves; Ctrl-C typed at the prompt only
	// drops the line; SIGINT (Ctrl-C as a terminal with isig sends it)
	// ends the shell. The terminal is sane after each.
	for _, tc := range []struct {
		name string
		how  func(p *ptytest.PTY, cmd *exec.Cmd)
		code int
	}{
		{"ctrl-d", func(p *ptytest.PTY, cmd *exec.Cmd) { p.Type(t, "\x04") }, 0},
		{"ctrl-c", func(p *ptytest.PTY, cmd *exec.Cmd) {
			p.Type(t, "ls /dis\x03")
			p.Type(t, "pwd\r")
			p.Wait(t, "/\n")
			if p.Termios(t).Lflag&unix.ICANON != 0 {
				t.Errorf("Ctrl-C at the prompt left go-prompt's raw mode")
			}
			cmd.Process.Signal(syscall.SIGINT)
		}, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ptytest.Open(t)
			before := p.Termios(t)
			cmd := shell(t, p)
			p.Wait(t, "/> ")
			p.Type(t, "ls /disks 1\r")
			p.Wait(t, "o- rbd ", "/> ")
			tc.how(p, cmd)
			if code := ptytest.WaitExit(t, cmd); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			p.CheckCooked(t, before)
			p.CheckStty(t)
		})
	}
}

// shell starts the gwcli binary interactively on the pseudo-terminal.
func shell(t *testing.T, p *ptytest.PTY) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(env.gwcli)
	cmd.Env = append(os.Environ(), "RBDGW_API_URL="+env.url, "RBDGW_API_TOKEN="+env.token,
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TERM=xterm")
	p.Start(t, cmd)
	return cmd
}

// TestBadInput: mistakes in batch mode against the real API are one line
// on standard error and the documented exit code.
func TestBadInput(t *testing.T) {
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
	closed, err := pickPort("GWCLI_E2E_API_PORTS", 5080, 5089)
	if err != nil {
		t.Fatal(err)
	}
	const missing = "iqn.2003-01.com.example:no-such-target"
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown path", []string{"/iscsi-targets/" + missing + "/nope", "ls"}, 2, "no such path /iscsi-targets/" + missing + "/nope: a target has gateways, disks, hosts and host-groups"},
		{"unknown root path", []string{"/dsks", "ls"}, 2, "no such path /dsks: / has cluster, disks and iscsi-targets"},
		{"unknown command", []string{"/disks", "frob"}, 2, `unknown command "frob" at /disks; commands there: create, attach, resize, delete, detach, info`},
		{"missing argument", []string{"/disks", "create", "pool=rbd", "image=x"}, 2, "create: missing size; usage: create pool=<pool> image=<image> size="},
		{"bad IQN", []string{"/iscsi-targets", "create", "iqn.2003-1.com.redhat:x"}, 2, `create: iSCSI name "iqn.2003-1.com.redhat:x": expected iqn.yyyy-mm.<reversed domain>[:<unique>]`},
		{"bad host IQN", []string{"/iscsi-targets/" + missing + "/hosts", "create", "rh7-client"}, 2, `create: iSCSI name "rh7-client"`},
		{"bad IQN in a path", []string{"ls", "/iscsi-targets/iqn.bad"}, 2, "no such path /iscsi-targets/iqn.bad"},
		{"wrong size unit", []string{"/disks", "create", "pool=rbd", "image=x", "size=90Q"}, 2, `size "90Q"`},
		{"wrong size unit (short form)", []string{"/disks", "create", "rbd/x", "90gigs"}, 2, `size "90gigs"`},
		{"unknown flag", []string{"--frob", "ls"}, 2, "flag provided but not defined: -frob"},
		{"not found", []string{"ls", "/iscsi-targets/" + missing}, 4, "target " + missing + " does not exist"},
		{"API unreachable", []string{"--url", fmt.Sprintf("http://127.0.0.1:%d", closed), "ls", "/"}, 1, fmt.Sprintf("cannot reach the API at http://127.0.0.1:%d: connect: connection refused", closed)},
		{"wrong token", []string{"--token", "rbdgw_not-a-token", "ls", "/"}, 1, "token rejected by " + env.url + ": invalid or revoked token"},
		{"bad physical block size", []string{"/disks", "create", "rbd/x", "1G", "block_size=4096", "physical_block_size=512"}, 2, "create: physical_block_size 512: must be from the block size (4096)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := gw(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) || !strings.HasPrefix(errs, "error: ") ||
				strings.Count(errs, "\n") != 1 || out != "" {
				t.Errorf("gwcli %s: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, out, errs, tc.code, tc.msg)
			}
			t.Logf("gwcli %s: exit %d: %s", strings.Join(tc.args, " "), code, strings.TrimSpace(errs))
		})
	}
}
