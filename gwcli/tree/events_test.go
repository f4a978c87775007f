package tree

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// eventsAPI serves GET /events: connected, then evs (after the client's
// Last-Event-ID), then holds the stream open.
type eventsAPI struct {
	mu   sync.Mutex
	last []string
	evs  []string // "name|data"
}

func (s *eventsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.last = append(s.last, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	var after int64
	fmt.Sscan(r.Header.Get("Last-Event-ID"), &after)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "event: connected\nid: %d\ndata: {\"revision\":%d,\"type\":\"connected\",\"server\":\"gw-b\"}\n\n", max(after, 800), max(after, 800))
	for _, e := range s.evs {
		name, data, _ := strings.Cut(e, "|")
		var ev model.Event
		json.Unmarshal([]byte(data), &ev)
		if ev.Revision <= after {
			continue
		}
		fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", name, ev.Revision, data)
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

var sampleEvents = []string{
	`config|{"revision":812,"type":"config","op":"put","kind":"host","key":"targets/` + topIQN + `/hosts/iqn.1994-05.com.redhat:h1","value":{"chap":{"user":"h1","secret":"***"},"luns":[0,1]},"target":"` + topIQN + `","name":"iqn.1994-05.com.redhat:h1"}`,
	`config|{"revision":815,"type":"config","op":"delete","kind":"lun","key":"targets/` + topIQN + `/luns/3","target":"` + topIQN + `","lun":3}`,
	`owner|{"revision":823,"type":"owner","disk":"rbd/vm1","from":"gw-b","to":"gw-a","epoch":3}`,
	`fence|{"revision":825,"type":"fence","disk":"rbd/vm1","from":"gw-b","epoch":3,"gateway":"gw-a","clients":["10.0.0.2:0/3418274914"],"reason":"owner gw-b is gone","time":"2025-01-01T10:00:00Z"}`,
	`gateway|{"revision":826,"type":"gateway","op":"leave","gateway":"gw-b"}`,
	`compacted|{"revision":900,"type":"compacted","since":830}`,
}

func TestEventsCommand(t *testing.T) {
	api := &eventsAPI{evs: sampleEvents}
	e, out := newTopEnv(t, api)
	ctx := context.Background()
	if err := e.Line(ctx, "events count=6"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "events of ") || !strings.Contains(lines[0], "after revision 800 (gateway gw-b); Ctrl-C stops") {
		t.Errorf("first line: %q", lines[0])
	}
	lines = lines[1:]
	want := []string{
		"812  host            iqn.1994-05.com.redhat:h1 of " + topIQN + " written (LUNs 0, 1, CHAP user h1)",
		"815  lun             LUN 3 of " + topIQN + " deleted",
		"823  owner           rbd/vm1 owner gw-b -> gw-a (epoch 3)",
		"825  fence           rbd/vm1: gw-a fenced 10.0.0.2:0/3418274914 of gw-b (owner gw-b is gone)",
		"826  gateway         gw-b left (lease ended)",
		"900  compacted       history after revision 830 is compacted; continuing after 900 (read the state again)",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		// "2006-01-02 15:04:05  " then the revision.
		if len(l) < 21 || !strings.HasSuffix(l, want[i]) || strings.TrimSpace(l[21:]) != want[i] {
			t.Errorf("line %d: %q, want the time then %q", i, l, want[i])
		}
	}
	if !strings.HasPrefix(lines[3], time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC).Local().Format("2006-01-02 15:04:05")) {
		t.Errorf("a fencing is shown at its time: %q", lines[3])
	}
	if strings.Contains(out.String(), "***") {
		t.Errorf("a masked secret shown:\n%s", out)
	}

	// since= resumes; -o json prints one document per line, without the
	// connected event.
	out.Reset()
	e.Format = FormatJSON
	if err := e.Line(ctx, "events since=823 count=2"); err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev model.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		revs = append(revs, ev.Revision)
	}
	if fmt.Sprint(revs) != "[825 826]" {
		t.Errorf("since=823: %v\n%s", revs, out)
	}
	api.mu.Lock()
	if api.last[len(api.last)-1] != "823" {
		t.Errorf("Last-Event-ID %q", api.last[len(api.last)-1])
	}
	api.mu.Unlock()

	// A timeout: fewer events than count is an error; without count, not.
	out.Reset()
	start := time.Now()
	err := e.Line(ctx, "events since=826 count=5 timeout=500ms")
	if err == nil || !strings.Contains(err.Error(), "1 of 5 events within 500ms") || ExitCode(err) != ExitError {
		t.Errorf("count not reached: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout of 500ms took %v", d)
	}
	if err := e.Line(ctx, "events timeout=300ms"); err != nil {
		t.Errorf("timeout without count: %v", err)
	}
	// Ctrl-C (the command's context) stops it quietly.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(300*time.Millisecond, cancel)
	if err := e.Line(cctx, "events"); err != nil {
		t.Errorf("cancelled: %v", err)
	}
	for _, line := range []string{"events since=x", "events timeout=soon", "events count=0", "events since=-1"} {
		if err := e.Line(ctx, line); ExitCode(err) != ExitUsage {
			t.Errorf("%s: %v", line, err)
		}
	}
}
