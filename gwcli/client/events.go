package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// EventOptions configure Follow.
type EventOptions struct {
	// Since is the revision to resume after (0: from now on).
	Since int64
	// Idle is how long a stream may stay silent before it is taken as
	// dead and opened again (the API sends a heartbeat every 15 s;
	// 45 s when 0).
	Idle time.Duration
	// Retry is the pause before reconnecting after a dropped stream
	// (1 s when 0).
	Retry time.Duration
	// Reconnect: once a stream was opened, a stream that ends (the server restarted, dropped a slow
	// client, the network failed) is opened again after the last id
	// received, so nothing is missed and nothing comes twice. Without it
	// Follow returns the error.
	Reconnect bool
}

// StreamEvent is one server-sent event: its name (the event type), its id
// (set on the last event of each etcd revision) and its data.
type StreamEvent struct {
	Name  string
	ID    string
	Event model.Event
}

// FormatError is a stream gwcli cannot read: reconnecting would not help.
type FormatError struct{ Msg string }

func (e *FormatError) Error() string { return e.Msg }

// errStop ends Follow without an error.
var errStop = errors.New("stop")

// Stop, returned by Follow's callback, ends it without an error.
func Stop() error { return errStop }

// Follow reads GET /events and calls fn with each event in order, the
// "connected" event of every (re)connection included, until ctx ends
// (nil), fn returns an error (Stop(): nil) or the stream fails.
func (c *Client) Follow(ctx context.Context, o EventOptions, fn func(StreamEvent) error) error {
	if o.Idle <= 0 {
		o.Idle = 45 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	last := ""
	if o.Since > 0 {
		last = strconv.FormatInt(o.Since, 10)
	}
	opened := false
	for {
		ok, err := c.stream(ctx, last, o.Idle, func(ev StreamEvent) error {
			if ev.ID != "" {
				last = ev.ID
			}
			return fn(ev)
		})
		switch {
		case errors.Is(err, errStop), ctx.Err() != nil:
			return nil
		case err == nil:
			err = &UnreachableError{URL: c.hostURL(), Err: errors.New("the event stream ended")}
		}
		opened = opened || ok
		var ae *APIError
		var au *AuthError
		var fe *FormatError
		if !o.Reconnect || !opened || errors.As(err, &ae) || errors.As(err, &au) || errors.As(err, &fe) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Retry):
		}
	}
}

// errIdle ends a stream that stayed silent too long.
var errIdle = errors.New("idle")

// stream reads one connection of the event stream until it ends; ok says
// that the API answered with a stream.
func (c *Client) stream(ctx context.Context, last string, idle time.Duration, fn func(StreamEvent) error) (ok bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/events", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	// No answer within the request timeout, then no line for idle (the
	// API sends a heartbeat every 15 s), means a dead connection.
	timer := time.AfterFunc(c.opts.Timeout, func() { cancel(errIdle) })
	defer timer.Stop()
	silent := func(err error) error {
		if errors.Is(context.Cause(ctx), errIdle) {
			return &UnreachableError{URL: c.hostURL(), Err: errors.New("the event stream went silent")}
		}
		return err
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return false, silent(&UnreachableError{URL: c.hostURL(), Err: err})
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, c.errorOf(request{method: http.MethodGet, path: "/events"}, resp, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, &FormatError{Msg: fmt.Sprintf("GET %s: the API answered %q, not an event stream", Prefix+"/events", ct)}
	}
	timer.Reset(idle)
	err = ReadEvents(resp.Body, fn, func() { timer.Reset(idle) })
	var fe *FormatError
	if err != nil && !errors.Is(err, errStop) && !errors.As(err, &fe) {
		return true, silent(&UnreachableError{URL: c.hostURL(), Err: err})
	}
	return true, err
}

// ReadEvents parses a text/event-stream body (the subset the API sends,
// as the HTML standard reads it: "event:", "id:", "data:" lines, comments
// starting with ':', an empty line ending each event) and calls fn with
// each event; line, when set, is called for every line read (heartbeats
// too). It returns fn's error, the reader's, or nil at the end.
func ReadEvents(r io.Reader, fn func(StreamEvent) error, line func()) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var name, id string
	var data strings.Builder
	hasData := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if line != nil {
			line()
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if l == "" {
			if hasData {
				ev := StreamEvent{Name: name, ID: id}
				if ev.Name == "" {
					ev.Name = "message"
				}
				if err := json.Unmarshal([]byte(data.String()), &ev.Event); err != nil {
					return &FormatError{Msg: fmt.Sprintf("event %q: data is not an event document: %v", ev.Name, err)}
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			name, id, hasData = "", "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(l, ":") {
			continue
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name = value
		case "id":
			id = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
}
