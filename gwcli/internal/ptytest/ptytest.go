//go:build linux

// Package ptytest drives a program on a pseudo-terminal as a person would:
// it types keys one at a time, reads the screen (escape sequences
// removed), and checks the terminal's modes after the program left. The
// interactive tests of gwcli use it, against a canned API
// (gwcli/cmd/gwcli) and against real gateways (gwcli/e2e).
package ptytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal opened with the kernel's ptmx interface.
type PTY struct {
	Master, Slave *os.File
	// Timeout bounds each Wait (10 s when 0).
	Timeout time.Duration

	mu  sync.Mutex
	buf bytes.Buffer
	// mark is where the next wait starts looking.
	mark int
}

// Open opens a pseudo-terminal of 40 rows and 132 columns; it skips the
// test where there is none.
func Open(t testing.TB) *PTY {
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
	p := &PTY{Master: m, Slave: s}
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

// Screen is everything written since the mark, escape sequences removed.
func (p *PTY) Screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ansi.ReplaceAllString(p.buf.String()[p.mark:], "")
}

// All is everything written since the terminal was opened, escape
// sequences removed.
func (p *PTY) All() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ansi.ReplaceAllString(p.buf.String(), "")
}

// Wait waits until the screen shows all of want, then moves the mark
// past it and returns what it saw.
func (p *PTY) Wait(t testing.TB, want ...string) string {
	t.Helper()
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		s := p.Screen()
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

// Type types s one key at a time, as a typist (not a paste).
func (p *PTY) Type(t testing.TB, s string) {
	t.Helper()
	for _, r := range s {
		if _, err := p.Master.Write([]byte(string(r))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// Send writes s in one write, as a paste or tmux send-keys does: the
// program may read several keys at once.
func (p *PTY) Send(t testing.TB, s string) {
	t.Helper()
	if _, err := p.Master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// Resize changes the terminal's size; the kernel sends SIGWINCH to the
// program in the foreground.
func (p *PTY) Resize(t testing.TB, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(p.Master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("window size: %v", err)
	}
}

// Termios is the terminal's current modes.
func (p *PTY) Termios(t testing.TB) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.Slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// Start starts cmd on the terminal, as the session leader with the
// terminal as its controlling terminal (go-prompt opens /dev/tty); the
// process is killed at the end of the test if it is still running.
func (p *PTY) Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Slave, p.Slave, p.Slave
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
}

// WaitExit waits (10 s at most) for cmd to end and returns its exit code
// (128+n when a signal n ended it).
func WaitExit(t testing.TB, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done // Wait has returned: the cleanup of Start finds it ended
		t.Fatal("the program did not exit")
	}
	return -1
}

// CheckCooked asserts the terminal is sane again: echo, icanon, isig and
// icrnl on, the modes it had before, blocking.
func (p *PTY) CheckCooked(t testing.TB, before *unix.Termios) {
	t.Helper()
	after := p.Termios(t)
	if after.Lflag&unix.ECHO == 0 || after.Lflag&unix.ICANON == 0 || after.Lflag&unix.ISIG == 0 {
		t.Errorf("terminal left without echo/icanon/isig: lflag %#x", after.Lflag)
	}
	if after.Iflag&unix.ICRNL == 0 {
		t.Errorf("terminal left without icrnl: iflag %#x", after.Iflag)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag || after.Cflag != before.Cflag {
		t.Errorf("terminal modes changed: before %+v after %+v", before, after)
	}
	fl, err := unix.FcntlInt(p.Slave.Fd(), unix.F_GETFL, 0)
	if err == nil && fl&unix.O_NONBLOCK != 0 {
		t.Errorf("terminal left non-blocking")
	}
}

// Stty is what "stty -a" says of the terminal ("" when stty is not
// installed).
func (p *PTY) Stty(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("stty"); err != nil {
		return ""
	}
	cmd := exec.Command("stty", "-a")
	cmd.Stdin = p.Slave
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stty -a: %v", err)
	}
	return string(out)
}

// CheckStty asserts that "stty -a" shows echo and icanon on (not -echo,
// -icanon); it does nothing without stty.
func (p *PTY) CheckStty(t testing.TB) {
	t.Helper()
	s := p.Stty(t)
	if s == "" {
		return
	}
	fields := strings.Fields(s)
	for _, want := range []string{"echo", "icanon", "isig", "icrnl"} {
		found := false
		for _, f := range fields {
			if f == want {
				found = true
			}
			if f == "-"+want {
				t.Errorf("stty -a shows -%s:\n%s", want, s)
			}
		}
		if !found {
			t.Errorf("stty -a does not show %s:\n%s", want, s)
		}
	}
}
