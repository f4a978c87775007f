package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadEvents(t *testing.T) {
	body := ": a comment\n" +
		"event: connected\nid: 812\ndata: {\"revision\":812,\"type\":\"connected\",\"server\":\"gw-a\"}\n\n" +
		": heartbeat\n\n" +
		"event: config\r\ndata: {\"revision\":815,\"type\":\"config\",\"op\":\"put\",\r\ndata: \"kind\":\"host\"}\r\n\r\n" +
		"event: owner\nid: 815\ndata:{\"revision\":815,\"type\":\"owner\",\"disk\":\"rbd/vm1\",\"from\":\"gw-b\",\"to\":\"gw-a\",\"epoch\":3}\n\n" +
		"data: {\"revision\":816,\"type\":\"gateway\"}\n\n" +
		"event: config\ndata: {\"revision\":817" // cut off: never dispatched
	var got []StreamEvent
	lines := 0
	err := ReadEvents(strings.NewReader(body), func(ev StreamEvent) error {
		got = append(got, ev)
		return nil
	}, func() { lines++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	if got[0].Name != "connected" || got[0].ID != "812" || got[0].Event.Server != "gw-a" {
		t.Errorf("connected: %+v", got[0])
	}
	// Two data lines are joined with a newline (valid JSON whitespace).
	if got[1].Name != "config" || got[1].ID != "" || got[1].Event.Kind != "host" || got[1].Event.Op != "put" {
		t.Errorf("config: %+v", got[1])
	}
	// "data:" without a space after the colon.
	if got[2].Name != "owner" || got[2].ID != "815" || got[2].Event.From != "gw-b" || got[2].Event.Epoch != 3 {
		t.Errorf("owner: %+v", got[2])
	}
	if got[3].Name != "message" || got[3].Event.Revision != 816 {
		t.Errorf("unnamed: %+v", got[3])
	}
	if lines < 12 {
		t.Errorf("line callback called %d times", lines)
	}

	// A callback's error ends the reading; bad data is a FormatError.
	stop := errors.New("enough")
	if err := ReadEvents(strings.NewReader(body), func(StreamEvent) error { return stop }, nil); err != stop {
		t.Errorf("callback error: %v", err)
	}
	var fe *FormatError
	if err := ReadEvents(strings.NewReader("event: x\ndata: {nope\n\n"), func(StreamEvent) error { return nil }, nil); !errors.As(err, &fe) {
		t.Errorf("bad data: %v", err)
	}
}

// sseServer serves GET /api/v1/events: the connected event, then the
// events of revisions after the client's Last-Event-ID (or ?since=); it
// drops the first connection after dropAfter events.
type sseServer struct {
	mu        sync.Mutex
	revs      []int64
	dropAfter int
	conns     []string // Last-Event-ID of each connection
	hold      chan struct{}
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":{"code":"unauthenticated","message":"invalid or revoked token"}}`)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	s.mu.Lock()
	s.conns = append(s.conns, last)
	first := len(s.conns) == 1
	s.mu.Unlock()
	var after int64
	fmt.Sscan(last, &after)
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	start := after
	if start == 0 {
		start = 100
	}
	fmt.Fprintf(w, "event: connected\nid: %d\ndata: {\"revision\":%d,\"type\":\"connected\",\"server\":\"gw-a\"}\n\n", start, start)
	fl.Flush()
	sent := 0
	for _, rev := range s.revs {
		if rev <= after {
			continue
		}
		if first && s.dropAfter > 0 && sent == s.dropAfter {
			return
		}
		// Two events in one revision: the id comes with the last.
		fmt.Fprintf(w, "event: config\ndata: {\"revision\":%d,\"type\":\"config\",\"op\":\"put\",\"kind\":\"disk\",\"name\":\"rbd/d%d\"}\n\n", rev, rev)
		fmt.Fprintf(w, "event: owner\nid: %d\ndata: {\"revision\":%d,\"type\":\"owner\",\"disk\":\"rbd/d%d\",\"to\":\"gw-a\",\"epoch\":1}\n\n", rev, rev, rev)
		fl.Flush()
		sent++
	}
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-r.Context().Done():
		}
	}
}

func newEventsClient(t *testing.T, h http.Handler, token string) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL, Token: token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFollowResumesAfterTheLastID(t *testing.T) {
	s := &sseServer{revs: []int64{101, 102, 103, 104}, dropAfter: 2, hold: make(chan struct{})}
	defer close(s.hold)
	c := newEventsClient(t, s, "tok")
	var got []string
	err := c.Follow(context.Background(), EventOptions{Reconnect: true, Retry: 10 * time.Millisecond}, func(ev StreamEvent) error {
		got = append(got, fmt.Sprintf("%s %d", ev.Name, ev.Event.Revision))
		if ev.Name == "owner" && ev.Event.Revision == 104 {
			return Stop()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "connected 100,config 101,owner 101,config 102,owner 102,connected 102,config 103,owner 103,config 104,owner 104"
	if strings.Join(got, ",") != want {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if strings.Join(s.conns, ",") != ",102" {
		t.Errorf("Last-Event-ID of the connections: %q", s.conns)
	}

	// since= is the first Last-Event-ID.
	s2 := &sseServer{revs: []int64{101, 102, 103}}
	c2 := newEventsClient(t, s2, "tok")
	var revs []int64
	err = c2.Follow(context.Background(), EventOptions{Since: 102}, func(ev StreamEvent) error {
		revs = append(revs, ev.Event.Revision)
		return nil
	})
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "ended") {
		t.Errorf("a stream that ends without Reconnect: %v", err)
	}
	if fmt.Sprint(revs) != "[102 103 103]" || s2.conns[0] != "102" {
		t.Errorf("since 102: %v, Last-Event-ID %q", revs, s2.conns)
	}
}

func TestFollowErrors(t *testing.T) {
	s := &sseServer{}
	// A token refused: no retry, the AuthError.
	c := newEventsClient(t, s, "wrong")
	var ae *AuthError
	if err := c.Follow(context.Background(), EventOptions{Reconnect: true}, func(StreamEvent) error { return nil }); !errors.As(err, &ae) {
		t.Errorf("refused token: %v", err)
	}
	// An API error (503) is returned as it is.
	c = newEventsClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		fmt.Fprint(w, `{"error":{"code":"unavailable","message":"the event stream cannot start: etcd does not answer"}}`)
	}), "tok")
	err := c.Follow(context.Background(), EventOptions{Reconnect: true}, func(StreamEvent) error { return nil })
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || !strings.Contains(err.Error(), "etcd does not answer") {
		t.Errorf("503: %v", err)
	}
	// Not an event stream.
	c = newEventsClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>")
	}), "tok")
	var fe *FormatError
	if err := c.Follow(context.Background(), EventOptions{Reconnect: true}, func(StreamEvent) error { return nil }); !errors.As(err, &fe) {
		t.Errorf("html: %v", err)
	}
	// Nobody listening: the first connection's error, no retry.
	c, _ = New(Options{URL: "http://127.0.0.1:1", Token: "tok"})
	var ue *UnreachableError
	if err := c.Follow(context.Background(), EventOptions{Reconnect: true}, func(StreamEvent) error { return nil }); !errors.As(err, &ue) {
		t.Errorf("unreachable: %v", err)
	}
	// A stream that goes silent past Idle is taken as dead.
	s = &sseServer{hold: make(chan struct{})}
	defer close(s.hold)
	c = newEventsClient(t, s, "tok")
	start := time.Now()
	err = c.Follow(context.Background(), EventOptions{Idle: 300 * time.Millisecond}, func(StreamEvent) error { return nil })
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "silent") {
		t.Errorf("silent stream: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("silent stream noticed after %v", d)
	}
	// The caller's context ends it without an error.
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = c.Follow(ctx, EventOptions{}, func(ev StreamEvent) error {
		n++
		cancel()
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("cancelled: %v after %d events", err, n)
	}
}
