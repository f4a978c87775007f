//go:build linux

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gwcli/internal/ptytest"
)

// TestInteractiveKeysTogether types what a person typed in tmux: ls (the
// suggestions show), Ctrl-U, cd /disks and Enter. Keys that reach the
// terminal together (right after Ctrl-U, a paste, tmux send-keys) were
// inserted into the line as text, carriage return included: the screen
// went blank and Enter ran nothing.
func TestInteractiveKeysTogether(t *testing.T) {
	_, url := startCanned(t)
	p := ptytest.Open(t)
	before := p.Termios(t)
	cmd := startShell(t, p, url)
	p.Wait(t, "/> ")

	// One key at a time, and then the same keys in one write.
	p.Type(t, "ls")
	p.Wait(t, "list the tree below a node")
	p.Type(t, "\x15cd /disks\r")
	p.Wait(t, "/disks> ")
	p.Type(t, "pwd\r")
	p.Wait(t, "/disks\n", "/disks> ")

	p.Type(t, "cd /\r")
	p.Wait(t, "/> ")
	p.Type(t, "ls")
	p.Wait(t, "list the tree below a node")
	p.Send(t, "\x15cd /disks\r")
	p.Wait(t, "/disks> ")
	p.Send(t, "pwd\r")
	p.Wait(t, "/disks\n", "/disks> ")

	// A paste of several lines runs each; an escape sequence go-prompt
	// does not know is not typed into the line.
	p.Send(t, "cd /iscsi-targets\rpwd\x1b[200~\r")
	p.Wait(t, "/iscsi-targets\n", "/iscsi-targets> ")
	s := p.All()
	if strings.Contains(s, "unknown command") || strings.Contains(s, "error:") {
		t.Errorf("a line was run with stray characters:\n%s", s)
	}

	// Editing keys over suggestions: Ctrl-W drops the word, Ctrl-A and
	// Ctrl-E move, Backspace and the arrows edit, Tab twice picks the
	// second suggestion.
	p.Send(t, "cd /disks/rb\x17\x01X\x05Y\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f")
	p.Type(t, "info /disk")
	p.Wait(t, "/disks/")
	p.Send(t, "\x1b[D\x1b[D\x1b[C\x1b[C")
	p.Type(t, "s\r")
	p.Wait(t, "DISK ", "rbd/disk_2 ", "/iscsi-targets> ")
	p.Type(t, "cd /")
	p.Wait(t, "/iscsi-targets/")
	p.Type(t, "\t")
	time.Sleep(100 * time.Millisecond)
	p.Type(t, "\t\r")
	p.Wait(t, "/disks> ")

	p.Type(t, "exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
	p.CheckCooked(t, before)
}

// TestInteractiveSmallWindow: go-prompt blanked the whole screen ("Your
// console window is too small...") when the window had fewer rows than
// the line and ten suggestions, from the start or after a resize, also one
// made while a command ran.
func TestInteractiveSmallWindow(t *testing.T) {
	url := startSlowCanned(t, "/api/v1/sessions", time.Second)
	p := ptytest.Open(t)
	p.Resize(t, 8, 100)
	cmd := startShell(t, p, url)
	p.Wait(t, "/> ")
	p.Type(t, "cd ")
	p.Wait(t, "iscsi-targets/")
	p.Type(t, "/disks\r")
	p.Wait(t, "/disks> ")

	// Smaller than the suggestions: as many as fit.
	p.Resize(t, 3, 100)
	p.Type(t, "cd /")
	p.Wait(t, "/disks/")
	p.Type(t, "\x15")
	p.Resize(t, 40, 100)
	p.Type(t, "cd /\r")
	p.Wait(t, "/> ")
	if s := p.All(); strings.Contains(s, "too small") {
		t.Errorf("the screen was blanked:\n%s", s)
	}

	// A resize while a command runs (go-prompt does not listen then)
	// reaches go-prompt: the suggestions are drawn for the new width, the
	// target's name cut to 60 columns with "...", no room for its
	// description.
	p.Type(t, "sessions\r")
	time.Sleep(300 * time.Millisecond)
	p.Resize(t, 40, 60)
	p.Wait(t, "error:", "/> ")
	p.Type(t, "cd /iscsi-targets/")
	s := p.Wait(t, "/iscsi-targets/iqn.2003-01.com.redhat", "...")
	if strings.Contains(s, "Gateways: 2") {
		t.Errorf("suggestions drawn for the old width:\n%s", s)
	}
	p.Type(t, "\x15exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// startSlowCanned is the canned API answering path after a delay.
func startSlowCanned(t *testing.T, path string, delay time.Duration) string {
	c := &canned{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			time.Sleep(delay)
		}
		c.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
