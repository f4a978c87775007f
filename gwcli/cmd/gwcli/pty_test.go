//go:build linux

package main

import (
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

// startShell runs this test binary as interactive gwcli on the pty.
func startShell(t *testing.T, p *ptytest.PTY, url string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "GWCLI_TEST_MAIN=1", "RBDGW_API_URL="+url, "RBDGW_API_TOKEN="+token,
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TERM=xterm")
	p.Start(t, cmd)
	return cmd
}

func TestInteractiveShell(t *testing.T) {
	_, url := startCanned(t)
	p := ptytest.Open(t)
	before := p.Termios(t)
	if before.Lflag&unix.ECHO == 0 || before.Lflag&unix.ICANON == 0 {
		t.Fatalf("a fresh pty is not in cooked mode: %#x", before.Lflag)
	}
	cmd := startShell(t, p, url)
	p.Wait(t, "gwcli: "+url+"/api/v1 (gateway ceph-gw-1, 1.0-test)", "/> ")

	// ls / draws the tree.
	p.Type(t, "ls /\r")
	p.Wait(t, "o- iscsi-targets ", "[180G, Disks: 2]", "[Up: 1/2, Portals: 2]", "[LOGGED-IN (ceph-gw-1), Auth: None, Disks: 1(90G)]", "/> ")

	// Tab completes a path; the prompt follows cd.
	p.Type(t, "cd /isc")
	p.Wait(t, "/iscsi-targets/")
	p.Type(t, "\t")
	p.Type(t, "\r")
	p.Wait(t, "/iscsi-targets> ")

	// Live names with their descriptions.
	p.Type(t, "cd ")
	p.Wait(t, tIQN, "Auth: None, Gateways: 2")
	p.Type(t, "\t\r")
	p.Wait(t, "/iscsi-targets/"+tIQN+"> ")
	p.Type(t, "cd gateways/")
	p.Wait(t, "gateways/ceph-gw-1", "10.172.19.21:3260 (UP)", "10.172.19.22:3260 (DOWN)")
	// Ctrl-C throws the line away and the shell stays.
	p.Type(t, "\x03")
	p.Type(t, "pwd\r")
	p.Wait(t, "/iscsi-targets/"+tIQN+"\n", "/iscsi-targets/"+tIQN+"> ")

	// An error is one line with the API's message, and the shell goes on.
	p.Type(t, "/disks delete rbd/disk_1\r")
	s := p.Wait(t, "error: disk rbd/disk_1 is mapped as LUN 0 of "+tIQN+"; unmap it first", "> ")
	if strings.Count(s, "error:") != 1 {
		t.Errorf("error shown %d times:\n%s", strings.Count(s, "error:"), s)
	}
	p.Type(t, "frob\r")
	p.Wait(t, `error: unknown command "frob"`)
	p.Type(t, "cd /\r")
	p.Wait(t, "/> ")

	p.Type(t, "exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
	p.CheckCooked(t, before)
	p.CheckStty(t)
}

func TestInteractiveExits(t *testing.T) {
	_, url := startCanned(t)
	for _, tc := range []struct {
		name string
		how  func(t *testing.T, p *ptytest.PTY, cmd *exec.Cmd)
		code []int
	}{
		{"ctrl-d", func(t *testing.T, p *ptytest.PTY, cmd *exec.Cmd) { p.Type(t, "\x04") }, []int{0}},
		{"sigterm", func(t *testing.T, p *ptytest.PTY, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGTERM) }, []int{1, 143}},
		{"sighup", func(t *testing.T, p *ptytest.PTY, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGHUP) }, []int{129}},
		{"sigint", func(t *testing.T, p *ptytest.PTY, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGINT) }, []int{0, 130}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ptytest.Open(t)
			before := p.Termios(t)
			cmd := startShell(t, p, url)
			p.Wait(t, "/> ")
			// Type something first so go-prompt is reading in raw mode.
			p.Type(t, "ls /disks\r")
			p.Wait(t, "[180G, Disks: 2]", "/> ")
			// go-prompt draws the prompt, then puts the terminal in raw
			// mode: wait for the second.
			for deadline := time.Now().Add(5 * time.Second); p.Termios(t).Lflag&unix.ICANON != 0; {
				if time.Now().After(deadline) {
					t.Fatalf("go-prompt is not in raw mode")
				}
				time.Sleep(5 * time.Millisecond)
			}
			tc.how(t, p, cmd)
			code := ptytest.WaitExit(t, cmd)
			ok := false
			for _, c := range tc.code {
				ok = ok || c == code
			}
			if !ok {
				t.Errorf("exit code %d, want one of %v", code, tc.code)
			}
			p.CheckCooked(t, before)
			p.CheckStty(t)
		})
	}
}
