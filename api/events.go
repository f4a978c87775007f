package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// GET /events streams what happens in the cluster as server-sent events
// (text/event-stream), from an etcd watch of the cluster (package
// gateway/events): each event is
//
//	event: <type>
//	id: <etcd revision>
//	data: <model.Event as JSON>
//
// The id line comes with the last event of each revision only, so that the
// last event id a client holds always means "every event up to this
// revision was received": a client that reconnects with it (Last-Event-ID,
// or ?since=) misses nothing and gets nothing twice.

// Stream timing; variables for the tests.
var (
	// eventHeartbeat is how often a comment keeps a quiet stream (and the
	// proxies on its way) alive.
	eventHeartbeat = 15 * time.Second
	// eventStall is how long a client may leave its stream unread: a write
	// that cannot complete, or a full queue, for that long disconnects it
	// (it resumes with its last event id).
	eventStall = 10 * time.Second
)

// eventBuffer is how many revisions may wait for a client; the watch
// waits (at most eventStall) when they are there, so a client catching up
// on a long history is not cut off while it reads.
const eventBuffer = 256

var eventsQuery = []param{{"since", "integer", "the etcd revision the client has seen: events after it are sent (default: from now on); the Last-Event-ID header, when sent, wins"}}

var eventsHeaders = []param{{"Last-Event-ID", "string", "the id of the last event received (an EventSource sends it when it reconnects): the stream resumes after that revision"}}

var errSlowClient = errors.New("event stream client too slow")

// eventsSince reads where a stream resumes: Last-Event-ID, else ?since=.
func eventsSince(c *gin.Context) (int64, error) {
	v, what := c.GetHeader("Last-Event-ID"), "Last-Event-ID"
	if strings.TrimSpace(v) == "" {
		v, what = c.Query("since"), "since"
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(v, 10, 64)
	if err != nil || rev < 0 {
		return 0, invalidf("%s %q: not an etcd revision", what, v)
	}
	return rev, nil
}

// eventBatch is what the watch hands the writer: the start of the stream
// or the events of one revision.
type eventBatch struct {
	rev    int64
	start  bool
	events []model.Event
}

func (s *Server) streamEvents(c *gin.Context) {
	if s.opts.Events == nil {
		s.fail(c, newError(http.StatusServiceUnavailable, model.CodeUnavailable, "gateway %s serves no event stream", s.opts.Gateway))
		return
	}
	since, err := eventsSince(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()

	// The watch waits for the client only so long: a queue full for
	// eventStall ends the stream.
	queue := make(chan eventBatch, eventBuffer)
	overflow := make(chan struct{})
	var once sync.Once
	push := func(b eventBatch) error {
		select {
		case queue <- b:
			return nil
		default:
		}
		stall := time.NewTimer(eventStall)
		defer stall.Stop()
		select {
		case queue <- b:
			return nil
		case <-stall.C:
			once.Do(func() { close(overflow) })
			return errSlowClient
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- s.opts.Events.Follow(ctx, since,
			func(rev int64) error { return push(eventBatch{rev: rev, start: true}) },
			func(evs []model.Event) error {
				return push(eventBatch{rev: evs[len(evs)-1].Revision, events: evs})
			})
	}()
	defer func() { cancel(); <-done }()

	// Until the stream starts, a failure (etcd unreachable) is an error
	// response rather than an empty stream.
	var first eventBatch
	startTimeout := time.NewTimer(s.opts.StoreTimeout)
	defer startTimeout.Stop()
	select {
	case first = <-queue:
	case err := <-done:
		done <- err // for the deferred wait
		if ctx.Err() == nil {
			s.fail(c, err)
		}
		return
	case <-startTimeout.C:
		s.fail(c, newError(http.StatusServiceUnavailable, model.CodeUnavailable,
			"the cluster store (etcd) did not answer in %s; the event stream cannot start", s.opts.StoreTimeout))
		return
	case <-ctx.Done():
		return
	}

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("Connection", "close")     // the connection ends with the stream
	c.Status(http.StatusOK)
	// Each write has a deadline of its own, past the server's write
	// timeout (which covers a whole response).
	rc := http.NewResponseController(c.Writer)
	write := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(eventStall)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := c.Writer.Write(b); err != nil {
			return err
		}
		c.Writer.Flush()
		return nil
	}
	hello := model.Event{Revision: first.rev, Type: model.EventConnected, Since: since, Server: s.opts.Gateway}
	if err := write(formatEvents(first.rev, []model.Event{hello})); err != nil {
		return
	}
	heartbeat := time.NewTicker(eventHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case b := <-queue:
			if err := write(formatEvents(b.rev, b.events)); err != nil {
				return
			}
		case <-heartbeat.C:
			if err := write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
		case <-overflow:
			s.log.Warn("event stream client too slow; disconnecting it", "remote", c.ClientIP(), "buffered", eventBuffer)
			return
		case err := <-done:
			done <- err
			if ctx.Err() == nil && err != nil && !errors.Is(err, errSlowClient) {
				s.log.Warn("event stream ended", "err", err)
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// formatEvents renders the events of revision rev, the id on the last.
func formatEvents(rev int64, evs []model.Event) []byte {
	var b bytes.Buffer
	for i, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			continue // only plain fields: cannot fail
		}
		b.WriteString("event: ")
		b.WriteString(ev.Type)
		b.WriteByte('\n')
		if i == len(evs)-1 {
			b.WriteString("id: ")
			b.WriteString(strconv.FormatInt(rev, 10))
			b.WriteByte('\n')
		}
		b.WriteString("data: ")
		b.Write(data) // compact JSON: one line
		b.WriteString("\n\n")
	}
	return b.Bytes()
}
