package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/events"
)

// sseEvent is one server-sent event as a client reads it.
type sseEvent struct {
	name string
	// id is the event's id line ("" without); lastID the last event id
	// the client holds after it (what an EventSource resumes with).
	id, lastID string
	data       model.Event
	raw        string
}

// sseStream reads GET /events with net/http.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	// comments counts comment lines (heartbeats).
	cancel context.CancelFunc
}

// openEvents opens the event stream with a viewer token and the given
// query and headers.
func (e *env) openEvents(query string, hdr ...string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+api.APIPrefix+"/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[api.RoleViewer])
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		e.t.Fatalf("GET /events%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: e.t, resp: resp, events: make(chan sseEvent, 1024), cancel: cancel}
	go s.read()
	e.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// read parses the stream as the SSE specification says an EventSource
// does, keeping the last event id across events without one.
func (s *sseStream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	var cur sseEvent
	var raw strings.Builder
	lastID := ""
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		switch {
		case line == "":
			if cur.name == "" && cur.raw == "" {
				raw.Reset()
				continue
			}
			cur.lastID = lastID
			full := raw.String()
			if err := json.Unmarshal([]byte(cur.raw), &cur.data); err != nil {
				s.t.Errorf("event data %q: %v", cur.raw, err)
			}
			cur.raw = full
			s.events <- cur
			cur, raw = sseEvent{}, strings.Builder{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
			lastID = cur.id
		case strings.HasPrefix(line, "data: "):
			cur.raw = strings.TrimPrefix(line, "data: ")
		default:
			s.t.Errorf("unexpected line %q", line)
		}
	}
}

// next returns the next event, failing the test after timeout.
func (s *sseStream) next(timeout time.Duration) sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(timeout):
		s.t.Fatal("no event in time")
	}
	return sseEvent{}
}

// until reads events until one satisfies done, and returns them all.
func (s *sseStream) until(done func(sseEvent) bool) []sseEvent {
	s.t.Helper()
	var out []sseEvent
	for {
		ev := s.next(10 * time.Second)
		out = append(out, ev)
		if done(ev) {
			return out
		}
	}
}

// describe is an event in a form to compare streams with.
func describe(ev sseEvent) string {
	d := ev.data
	return fmt.Sprintf("%d %s %s %s %s %s>%s %s", d.Revision, ev.name, d.Op, d.Kind, d.Key+d.Disk, d.From, d.To, d.Gateway)
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const secret1, secret2 = "host1secret01", "host1secret02"
	s := e.openEvents("")
	hello := s.next(5 * time.Second)
	if hello.name != model.EventConnected || hello.id == "" || hello.data.Server != "gw-test" {
		t.Fatalf("first event: %+v", hello)
	}
	start, _ := strconv.ParseInt(hello.id, 10, 64)

	// Configuration, a CHAP secret changing, a gateway joining, an owner
	// moving, a fencing, the gateway leaving, a host removed.
	e.base()
	host := "/targets/" + tgt + "/hosts/" + ini1
	e.must(200, "PUT", host, `{"chap": {"user": "h1", "secret": "`+secret1+`"}, "luns": [0]}`)
	e.must(200, "PUT", host, `{"chap": {"user": "h1", "secret": "`+secret2+`"}, "luns": [0]}`)
	reg := e.liveReg("gw-a")
	if _, err := e.store.ClaimOwner(ctx, "rbd/d1", "gw-a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ClaimOwner(ctx, "rbd/d1", "gw-b", 1); err != nil {
		t.Fatal(err)
	}
	if err := events.RecordFence(ctx, etcdCli, e.store.Prefix(), events.Fence{Disk: "rbd/d1", Gateway: "gw-b", From: "gw-a",
		Epoch: 2, Clients: []string{"127.0.0.1:0/42"}, Reason: "owner gw-a is gone"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.must(200, "DELETE", host, nil)

	all := s.until(func(ev sseEvent) bool { return ev.data.Kind == "host" && ev.data.Op == events.OpDelete })
	var (
		hostPuts []sseEvent
		seen     = map[string]int{}
	)
	for i, ev := range all {
		if ev.data.Revision <= start || (i > 0 && ev.data.Revision < all[i-1].data.Revision) {
			t.Fatalf("event %d out of order: %s", i, describe(ev))
		}
		// The id comes with the last event of each revision: the last id
		// a client holds never covers an event it has not read.
		last := i == len(all)-1 || all[i+1].data.Revision != ev.data.Revision
		if (ev.id != "") != last || (last && ev.id != strconv.FormatInt(ev.data.Revision, 10)) {
			t.Fatalf("event %d (%s) has id %q", i, describe(ev), ev.id)
		}
		if ev.name != ev.data.Type {
			t.Fatalf("event name %s, type %s", ev.name, ev.data.Type)
		}
		if strings.Contains(ev.raw, secret1) || strings.Contains(ev.raw, secret2) {
			t.Fatalf("a secret on the stream: %s", ev.raw)
		}
		if ev.data.Kind == "host" && ev.data.Op == events.OpPut {
			hostPuts = append(hostPuts, ev)
		}
		seen[ev.name+" "+ev.data.Op]++
	}
	if len(hostPuts) != 2 || !strings.Contains(string(hostPuts[1].data.Value), `"secret":"***"`) {
		t.Fatalf("host writes: %+v", hostPuts)
	}
	if seen["gateway join"] != 1 || seen["gateway leave"] != 1 || seen["owner "] != 2 || seen["fence "] != 1 || seen["config delete"] != 1 {
		t.Fatalf("events seen: %v", seen)
	}
	for _, ev := range all {
		switch ev.name {
		case model.EventOwner:
			if ev.data.Disk != "rbd/d1" || ev.data.To == "" || (ev.data.Epoch == 2 && (ev.data.From != "gw-a" || ev.data.To != "gw-b")) {
				t.Fatalf("owner: %+v", ev.data)
			}
		case model.EventFence:
			if ev.data.Gateway != "gw-b" || ev.data.From != "gw-a" || len(ev.data.Clients) != 1 || ev.data.Time == nil {
				t.Fatalf("fence: %+v", ev.data)
			}
		}
	}

	// Resuming after any id, with Last-Event-ID or since=, gives exactly
	// the events after it.
	for i, ev := range all {
		if ev.id == "" || i == len(all)-1 {
			continue
		}
		var r *sseStream
		if i%2 == 0 {
			r = e.openEvents("", "Last-Event-ID", ev.id)
		} else {
			r = e.openEvents("?since=" + ev.id)
		}
		if h := r.next(5 * time.Second); h.name != model.EventConnected || h.id != ev.id {
			t.Fatalf("resumed after %s: %+v", ev.id, h)
		}
		for j := i + 1; j < len(all); j++ {
			if got := r.next(5 * time.Second); describe(got) != describe(all[j]) {
				t.Fatalf("resumed after %s: %s, want %s", ev.id, describe(got), describe(all[j]))
			}
		}
		r.close()
	}

	// A client that drops in the middle and reconnects with its last id
	// misses nothing and gets nothing twice.
	var got []sseEvent
	lastID := strconv.FormatInt(start, 10)
	for len(got) < len(all) {
		r := e.openEvents("?since=1", "Last-Event-ID", lastID) // Last-Event-ID wins
		r.next(5 * time.Second)
		for n := 0; n < 3 && len(got)+n < len(all); n++ {
			ev := r.next(5 * time.Second)
			got = append(got, ev)
			if ev.lastID != "" {
				lastID = ev.lastID
			}
		}
		r.close()
		// The events read after the last id come again.
		for len(got) > 0 && got[len(got)-1].data.Revision > mustInt(t, lastID) {
			got = got[:len(got)-1]
		}
		if prev := len(got); prev == 0 || got[prev-1].id != lastID {
			t.Fatalf("reconnecting client stuck at %s", lastID)
		}
	}
	for i := range all {
		if describe(got[i]) != describe(all[i]) {
			t.Fatalf("reconnecting client: event %d is %s, want %s", i, describe(got[i]), describe(all[i]))
		}
	}

	// A bad revision is refused; one compacted away is reported.
	for _, bad := range []string{"?since=x", "?since=-1"} {
		if r := e.do(api.RoleViewer, "GET", "/events"+bad, nil); r.status != 400 {
			t.Fatalf("since %s: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.do(api.RoleViewer, "GET", "/events", nil, "Last-Event-ID", "abc"); r.status != 400 {
		t.Fatalf("Last-Event-ID abc: %d", r.status)
	}
	if r := e.do(0, "GET", "/events", nil); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	cur := all[len(all)-1].data.Revision
	if _, err := etcdCli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	r := e.openEvents("?since=" + strconv.FormatInt(start, 10))
	h := r.next(5 * time.Second)
	c := r.next(5 * time.Second)
	if h.name != model.EventConnected || c.name != model.EventCompacted || c.data.Since != start || c.data.Revision < cur ||
		c.id != strconv.FormatInt(c.data.Revision, 10) || h.id != c.id {
		t.Fatalf("compacted: %+v then %+v", h, c)
	}
	e.must(200, "PUT", "/gateways/gw-z", model.GatewayPut{Portals: []string{"127.0.0.1:3299"}})
	if ev := r.next(5 * time.Second); ev.data.Key != "gateways/gw-z" || ev.data.Revision <= c.data.Revision {
		t.Fatalf("after the compaction: %s", describe(ev))
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
