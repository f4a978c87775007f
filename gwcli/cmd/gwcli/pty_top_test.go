//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/internal/ptytest"
)

// startObserved serves the canned API plus /luns/stats (two rows of
// rbd/disk_1, one per gateway) and /events (a connected event, then a
// host written every 200 ms, until the client leaves).
func startObserved(t *testing.T) string {
	c := &canned{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			c.ServeHTTP(w, r)
			return
		}
		switch r.URL.Path {
		case "/api/v1/luns/stats":
			st := model.Stats{Time: time.Now().UTC(), Window: 5,
				LUNs: []model.LUNStats{
					{Target: tIQN, LUN: 0, Disk: "rbd/disk_1", Gateway: "ceph-gw-1", ALUAState: "active_optimized",
						IORates: model.IORates{Window: 6, IOPS: 4321, ReadIOPS: 4321, ReadMBps: 17.7, P50Ms: 0.35, P99Ms: 1.9, QueueDepth: 16}},
					{Target: tIQN, LUN: 0, Disk: "rbd/disk_1", Gateway: "ceph-gw-2", ALUAState: "active_non_optimized",
						IORates: model.IORates{Window: 6, IOPS: 12, WriteIOPS: 12, WriteMBps: 0.05, P50Ms: 0.5, P99Ms: 25, QueueDepth: 1}},
				},
				Gateways: []model.GatewayStats{{Name: "ceph-gw-1", State: "up"}, {Name: "ceph-gw-2", State: "up"}}, Down: []string{}}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(st)
		case "/api/v1/events":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: connected\nid: 42\ndata: {\"revision\":42,\"type\":\"connected\",\"server\":\"ceph-gw-1\"}\n\n")
			w.(http.Flusher).Flush()
			for rev := 43; ; rev++ {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				fmt.Fprintf(w, "event: config\nid: %d\ndata: {\"revision\":%d,\"type\":\"config\",\"op\":\"put\",\"kind\":\"host\",\"target\":\"%s\",\"name\":\"%s\"}\n\n", rev, rev, tIQN, hIQN)
				w.(http.Flusher).Flush()
			}
		default:
			c.ServeHTTP(w, r)
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// startGwcli runs this test binary as gwcli with args on the pty.
func startGwcli(t *testing.T, p *ptytest.PTY, url string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "GWCLI_TEST_MAIN=1", "RBDGW_API_URL="+url, "RBDGW_API_TOKEN="+token,
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TERM=xterm")
	p.Start(t, cmd)
	return cmd
}

// TestTopOnTerminal: gwcli top draws the table on the terminal without
// echo or line buffering, sorts on a key, and q or Ctrl-C leave it with
// the terminal as it was (stty -a shows echo and icanon).
func TestTopOnTerminal(t *testing.T) {
	url := startObserved(t)
	for _, leave := range []struct{ name, key string }{{"q", "q"}, {"ctrl-c", "\x03"}} {
		t.Run(leave.name, func(t *testing.T) {
			p := ptytest.Open(t)
			p.Timeout = 30 * time.Second
			before := p.Termios(t)
			cmd := startGwcli(t, p, url, "top")
			p.Wait(t, "gwcli top - ", "sort iops", "gateways up: ceph-gw-1, ceph-gw-2", "keys: i iops",
				"LUN  DISK        GATEWAY    ALUA  IOPS", "0    rbd/disk_1  ceph-gw-1  AO    4321", "0    rbd/disk_1  ceph-gw-2  ANO     12")
			if tio := p.Termios(t); tio.Lflag&(unix.ECHO|unix.ICANON) != 0 {
				t.Errorf("top runs with echo or icanon: lflag %#x", tio.Lflag)
			}
			p.Type(t, "p")
			p.Wait(t, "sort p99", "0    rbd/disk_1  ceph-gw-2  ANO     12")
			p.Type(t, leave.key)
			if code := ptytest.WaitExit(t, cmd); code != 0 {
				t.Errorf("exit code %d", code)
			}
			p.CheckCooked(t, before)
			p.CheckStty(t)
			if all := p.All(); !strings.Contains(all, "\x1b") && strings.Count(all, "gwcli top - ") < 1 {
				t.Errorf("nothing drawn:\n%s", all)
			}
		})
	}
}

// TestTopAndEventsInTheShell: in the shell, top draws until q and gives
// the terminal back to the prompt, which still reads every key; events
// follows until Ctrl-C, and the shell goes on.
func TestTopAndEventsInTheShell(t *testing.T) {
	url := startObserved(t)
	p := ptytest.Open(t)
	p.Timeout = 30 * time.Second
	before := p.Termios(t)
	cmd := startGwcli(t, p, url)
	p.Wait(t, "/> ")
	p.Type(t, "top sort=gateway\r")
	p.Wait(t, "sort gateway", "0    rbd/disk_1  ceph-gw-1  AO    4321")
	p.Type(t, "q")
	p.Wait(t, "/> ")
	p.Type(t, "ls /disks\r")
	p.Wait(t, "[180G, Disks: 2]", "/> ")

	p.Type(t, "events\r")
	p.Wait(t, "after revision 42 (gateway ceph-gw-1); Ctrl-C stops", "43  host", hIQN+" of "+tIQN+" written")
	if p.Termios(t).Lflag&unix.ISIG == 0 {
		t.Errorf("events runs without isig: Ctrl-C would not stop it")
	}
	p.Type(t, "\x03")
	p.Wait(t, "/> ")
	p.Type(t, "pwd\r")
	p.Wait(t, "/\n", "/> ")
	p.Type(t, "exit\r")
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d", code)
	}
	p.CheckCooked(t, before)
	p.CheckStty(t)
}

// TestTopBatchForms: -n and count= print snapshots and stop, -o json the
// API's document; events -n N stops after N events.
func TestTopBatchForms(t *testing.T) {
	url := startObserved(t)
	env := map[string]string{"RBDGW_API_URL": url, "RBDGW_API_TOKEN": token}
	out, errs, code := batch(t, env, "top", "-n", "1", "-o", "json")
	var st model.Stats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.LUNs) != 2 || st.LUNs[0].Gateway != "ceph-gw-1" {
		t.Fatalf("top -n 1 -o json: %d %s %s", code, out, errs)
	}
	out, errs, code = batch(t, env, "top", "count=2", "interval=200ms")
	if code != 0 || strings.Count(out, "gwcli top - ") != 2 || strings.Contains(out, "keys:") || strings.Contains(out, "\x1b") {
		t.Fatalf("top count=2: %d %s %s", code, out, errs)
	}
	out, errs, code = batch(t, env, "events", "-n", "2")
	if code != 0 || strings.Count(out, "  host  ") != 2 || !strings.Contains(errs, "after revision 42") {
		t.Fatalf("events -n 2: %d %q %q", code, out, errs)
	}
	_, errs, code = batch(t, env, "-n", "1")
	if code != 2 || !strings.Contains(errs, "-n goes with top or events") {
		t.Fatalf("-n alone: %d %s", code, errs)
	}
}
