//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal opened with the kernel's ptmx interface.
type pty struct {
	master, slave *os.File

	mu  sync.Mutex
	buf bytes.Buffer
	// mark is where the next wait starts looking.
	mark int
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 132}); err != nil {
		t.Fatalf("window size: %v", err)
	}
	p := &pty{master: m, slave: s}
	t.Cleanup(func() { m.Close(); s.Close() })
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := m.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\r`)

// screen is everything written since the mark, escape sequences removed.
func (p *pty) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ansi.ReplaceAllString(p.buf.String()[p.mark:], "")
}

// wait waits until the screen shows all of want, then moves the mark.
func (p *pty) wait(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := p.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			p.mu.Lock()
			p.mark = p.buf.Len()
			p.mu.Unlock()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q; it shows:\n%s", want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *pty) typ(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if _, err := p.master.Write([]byte(string(r))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond) // a typist, not a paste
	}
}

func (p *pty) termios(t *testing.T) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// startShell runs this test binary as interactive gwcli on the pty, as
// the session leader with the pty as its controlling terminal (go-prompt
// opens /dev/tty).
func startShell(t *testing.T, p *pty, url string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "GWCLI_TEST_MAIN=1", "RBDGW_API_URL="+url, "RBDGW_API_TOKEN="+token,
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gwcli did not exit")
	}
	return -1
}

// checkCooked asserts the terminal modes gwcli found are back.
func checkCooked(t *testing.T, p *pty, before *unix.Termios) {
	t.Helper()
	after := p.termios(t)
	if after.Lflag&unix.ECHO == 0 || after.Lflag&unix.ICANON == 0 || after.Lflag&unix.ISIG == 0 {
		t.Errorf("terminal left without echo/icanon/isig: lflag %#x", after.Lflag)
	}
	if after.Iflag&unix.ICRNL == 0 {
		t.Errorf("terminal left without icrnl: iflag %#x", after.Iflag)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag || after.Cflag != before.Cflag {
		t.Errorf("terminal modes changed: before %+v after %+v", before, after)
	}
	fl, err := unix.FcntlInt(p.slave.Fd(), unix.F_GETFL, 0)
	if err == nil && fl&unix.O_NONBLOCK != 0 {
		t.Errorf("terminal left non-blocking")
	}
}

func TestInteractiveShell(t *testing.T) {
	_, url := startCanned(t)
	p := openPTY(t)
	before := p.termios(t)
	if before.Lflag&unix.ECHO == 0 || before.Lflag&unix.ICANON == 0 {
		t.Fatalf("a fresh pty is not in cooked mode: %#x", before.Lflag)
	}
	cmd := startShell(t, p, url)
	p.wait(t, "gwcli: "+url+"/api/v1 (gateway ceph-gw-1, 1.0-test)", "/> ")

	// ls / draws the tree.
	p.typ(t, "ls /\r")
	p.wait(t, "o- iscsi-targets ", "[180G, Disks: 2]", "[Up: 1/2, Portals: 2]", "[LOGGED-IN (ceph-gw-1), Auth: None, Disks: 1(90G)]", "/> ")

	// Tab completes a path; the prompt follows cd.
	p.typ(t, "cd /isc")
	p.wait(t, "/iscsi-targets/")
	p.typ(t, "\t")
	p.typ(t, "\r")
	p.wait(t, "/iscsi-targets> ")

	// Live names with their descriptions.
	p.typ(t, "cd ")
	p.wait(t, tIQN, "Auth: None, Gateways: 2")
	p.typ(t, "\t\r")
	p.wait(t, "/iscsi-targets/"+tIQN+"> ")
	p.typ(t, "cd gateways/")
	p.wait(t, "gateways/ceph-gw-1", "10.172.19.21:3260 (UP)", "10.172.19.22:3260 (DOWN)")
	// Ctrl-C throws the line away and the shell stays.
	p.typ(t, "\x03")
	p.typ(t, "pwd\r")
	p.wait(t, "/iscsi-targets/"+tIQN+"\n", "/iscsi-targets/"+tIQN+"> ")

	// An error is one line with the API's message, and the shell goes on.
	p.typ(t, "/disks delete rbd/disk_1\r")
	s := p.wait(t, "error: disk rbd/disk_1 is mapped as LUN 0 of "+tIQN+"; unmap it first", "> ")
	if strings.Count(s, "error:") != 1 {
		t.Errorf("error shown %d times:\n%s", strings.Count(s, "error:"), s)
	}
	p.typ(t, "frob\r")
	p.wait(t, `error: unknown command "frob"`)
	p.typ(t, "cd /\r")
	p.wait(t, "/> ")

	p.typ(t, "exit\r")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
	checkCooked(t, p, before)
}

func TestInteractiveExits(t *testing.T) {
	_, url := startCanned(t)
	for _, tc := range []struct {
		name string
		how  func(t *testing.T, p *pty, cmd *exec.Cmd)
		code []int
	}{
		{"ctrl-d", func(t *testing.T, p *pty, cmd *exec.Cmd) { p.typ(t, "\x04") }, []int{0}},
		{"sigterm", func(t *testing.T, p *pty, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGTERM) }, []int{1, 143}},
		{"sighup", func(t *testing.T, p *pty, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGHUP) }, []int{129}},
		{"sigint", func(t *testing.T, p *pty, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGINT) }, []int{0, 130}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openPTY(t)
			before := p.termios(t)
			cmd := startShell(t, p, url)
			p.wait(t, "/> ")
			// Type something first so go-prompt is reading in raw mode.
			p.typ(t, "ls /disks\r")
			p.wait(t, "[180G, Disks: 2]", "/> ")
			if p.termios(t).Lflag&unix.ICANON != 0 {
				t.Fatalf("go-prompt is not in raw mode")
			}
			tc.how(t, p, cmd)
			code := waitExit(t, cmd)
			ok := false
			for _, c := range tc.code {
				ok = ok || c == code
			}
			if !ok {
				t.Errorf("exit code %d, want one of %v", code, tc.code)
			}
			checkCooked(t, p, before)
		})
	}
}
