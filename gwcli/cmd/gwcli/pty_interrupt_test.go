//go:build linux

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rbdgw/rbdgw/gwcli/internal/ptytest"
)

// startHanging is the canned API whose /sessions answers only when the
// client gives up: each request is reported on started, and on cancelled
// once its context ends.
func startHanging(t *testing.T) (url string, started, cancelled chan struct{}) {
	c := &canned{}
	started, cancelled = make(chan struct{}, 16), make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/sessions" {
			c.ServeHTTP(w, r)
			return
		}
		started <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, started, cancelled
}

func within(t *testing.T, ch chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// TestInteractiveInterrupt: go-prompt runs a command with the terminal
// raw, so Ctrl-C was a byte read after the command ended and a hanging
// request could not be stopped. Ctrl-C (and kill -INT) now cancel the
// request, the shell says "interrupted" and prompts again, and what was
// typed after Ctrl-C reaches the prompt.
func TestInteractiveInterrupt(t *testing.T) {
	url, started, cancelled := startHanging(t)
	p := ptytest.Open(t)
	before := p.Termios(t)
	cmd := startShell(t, p, url)
	p.Wait(t, "/> ")

	hang := func() {
		t.Helper()
		p.Type(t, "sessions\r")
		within(t, started, 5*time.Second, "the request")
		if tio := p.Termios(t); tio.Lflag&unix.ISIG == 0 {
			t.Errorf("a command runs without isig: lflag %#x", tio.Lflag)
		}
	}
	// interrupted waits for the message, the prompt after it, and more.
	interrupted := func(what, prompt string, more ...string) {
		t.Helper()
		p.Timeout = 2 * time.Second
		p.Wait(t, append([]string{"interrupted\n" + prompt}, more...)...)
		p.Timeout = 0
		within(t, cancelled, 2*time.Second, what+": the request cancelled")
	}

	// Ctrl-C typed; the prompt comes back and takes the next command.
	hang()
	p.Type(t, "\x03")
	interrupted("ctrl-c", "/> ")
	p.Type(t, "cd /disks\r")
	p.Wait(t, "/disks> ")
	if tio := p.Termios(t); tio.Lflag&unix.ISIG != 0 {
		t.Errorf("the prompt reads keys with isig on: lflag %#x", tio.Lflag)
	}

	// Keys typed with Ctrl-C in one write, and before the command ended,
	// are neither lost nor garbled.
	hang()
	p.Send(t, "\x03cd /iscsi-targets\r")
	interrupted("ctrl-c and a line", "/disks> ", "/iscsi-targets> ")
	p.Type(t, "pwd\r")
	p.Wait(t, "/iscsi-targets\n", "/iscsi-targets> ")

	// Ctrl-C that reaches the terminal together with Enter.
	p.Send(t, "/ sessions\r\x03")
	p.Timeout = 2 * time.Second
	p.Wait(t, "interrupted\n/iscsi-targets> ")
	p.Timeout = 0
	select { // the request may have been cancelled before it was sent
	case <-started:
		within(t, cancelled, 2*time.Second, "ctrl-c with enter: the request cancelled")
	default:
	}

	// kill -INT from elsewhere does the same.
	hang()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	interrupted("sigint", "/iscsi-targets> ")
	p.Type(t, "cd /\r")
	p.Wait(t, "/> ")

	p.Type(t, "exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if s := p.All(); strings.Contains(s, "error:") || strings.Contains(s, "unknown command") {
		t.Errorf("a line went wrong:\n%s", s)
	}
	p.CheckCooked(t, before)
	p.CheckStty(t)
}
