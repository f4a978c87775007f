package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// viewerTokens accepts one token, a viewer's.
type viewerTokens struct{ Tokens }

func (viewerTokens) Verify(_ context.Context, tok string) (Principal, error) {
	if tok != "t" {
		return Principal{}, ErrBadToken
	}
	return Principal{TokenID: "t", Name: "t", Role: RoleViewer}, nil
}

// floodEvents starts at revision 5 and sends large events as fast as it
// may, until send refuses one; block makes it send nothing and wait.
type floodEvents struct {
	block bool
	sent  atomic.Int64
	err   chan error
}

func (f *floodEvents) Follow(ctx context.Context, _ int64, start func(int64) error, send func([]model.Event) error) error {
	if err := start(5); err != nil {
		return err
	}
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	big, _ := json.Marshal(strings.Repeat("x", 16<<10))
	for rev := int64(6); ctx.Err() == nil; rev++ {
		if err := send([]model.Event{{Revision: rev, Type: model.EventConfig, Value: big}}); err != nil {
			f.err <- err
			return err
		}
		f.sent.Add(1)
	}
	return ctx.Err()
}

func streamRequest(t *testing.T, url string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return conn
}

// A client that stops reading is disconnected once it has left its
// stream unread for eventStall: the watch waits no longer than that, and
// no more than eventBuffer revisions wait for the client.
func TestEventsSlowClient(t *testing.T) {
	defer func(d time.Duration) { eventStall = d }(eventStall)
	eventStall = 300 * time.Millisecond
	f := &floodEvents{err: make(chan error, 1)}
	srv := httptest.NewServer(New(Options{Version: "v1", Tokens: viewerTokens{}, Events: f}).Handler())
	defer srv.Close()
	conn := streamRequest(t, srv.URL)
	defer conn.Close() // before the server closes: it waits for the stream
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "200") {
		t.Fatalf("status %q", status)
	}
	// Read nothing more: the socket buffers fill, the handler blocks in a
	// write, the queue fills.
	select {
	case err := <-f.err:
		if !errors.Is(err, errSlowClient) && !errors.Is(err, context.Canceled) {
			t.Fatalf("send failed with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not disconnected after %d events", f.sent.Load())
	}
	t.Logf("disconnected after %d events of 16 KiB (%d buffered)", f.sent.Load(), eventBuffer)
	// The server closes the connection: the client reads to its end.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		t.Fatalf("connection not closed after %d bytes: %v", n, err)
	}
	if max := int64(eventBuffer+1000) * (16 << 10); n > max {
		t.Fatalf("%d bytes sent after the client stopped reading", n)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	defer func(d time.Duration) { eventHeartbeat = d }(eventHeartbeat)
	eventHeartbeat = 50 * time.Millisecond
	f := &floodEvents{block: true}
	srv := httptest.NewServer(New(Options{Version: "v1", Tokens: viewerTokens{}, Events: f}).Handler())
	defer srv.Close()
	conn := streamRequest(t, srv.URL)
	defer conn.Close() // before the server closes: it waits for the stream
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.TrimSpace(line))
		if strings.HasPrefix(line, ": heartbeat") {
			break
		}
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"Content-Type: text/event-stream", "Cache-Control: no-store", "event: connected\nid: 5\ndata: "} {
		if !strings.Contains(text, want) {
			t.Fatalf("%q not in\n%s", want, text)
		}
	}
}

// silentEvents never starts, as when etcd does not answer.
type silentEvents struct{}

func (silentEvents) Follow(ctx context.Context, _ int64, _ func(int64) error, _ func([]model.Event) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// Without an event source the route answers 503, and a bad revision 400.
func TestEventsErrors(t *testing.T) {
	for _, tc := range []struct {
		events Events
		path   string
		hdr    string
		want   int
	}{
		{nil, "/api/v1/events", "", http.StatusServiceUnavailable},
		{&floodEvents{block: true}, "/api/v1/events?since=abc", "", http.StatusBadRequest},
		{&floodEvents{block: true}, "/api/v1/events", "12x", http.StatusBadRequest},
		{silentEvents{}, "/api/v1/events", "", http.StatusServiceUnavailable},
	} {
		s := New(Options{Version: "v1", Tokens: viewerTokens{}, Events: tc.events, StoreTimeout: 100 * time.Millisecond})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("Authorization", "Bearer t")
		if tc.hdr != "" {
			req.Header.Set("Last-Event-ID", tc.hdr)
		}
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s (Last-Event-ID %q): %d %s, want %d", tc.path, tc.hdr, rec.Code, rec.Body, tc.want)
		}
	}
}

// A stream outlives the server's timeouts (Serve's write timeout covers a
// whole response): each write has a deadline of its own.
func TestEventsOutliveServerTimeouts(t *testing.T) {
	defer func(d time.Duration) { eventHeartbeat = d }(eventHeartbeat)
	eventHeartbeat = 50 * time.Millisecond
	srv := httptest.NewUnstartedServer(New(Options{Version: "v1", Tokens: viewerTokens{}, Events: &floodEvents{block: true}}).Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	srv.Start()
	defer srv.Close()
	conn := streamRequest(t, srv.URL)
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	start, beats := time.Now(), 0
	for time.Since(start) < time.Second {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %v (%d heartbeats): %v", time.Since(start), beats, err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			beats++
		}
	}
	if beats < 10 {
		t.Fatalf("%d heartbeats in a second", beats)
	}
}
