package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

// events: follows GET /events, one line per event (time, revision, kind,
// summary), until Ctrl-C, count events or a timeout.

func eventsCommand() *Command {
	return &Command{Name: "events", Summary: "follow what changes in the cluster (configuration, owners, fencing, gateways)",
		Usage: "events [since=<revision>] [count=<n>] [timeout=<duration>]",
		Params: []Param{
			kw("since", VText, "print the events after this etcd revision first (default: from now on)"),
			kw("count", VCount, "stop after this many events (gwcli -n N)"),
			kw("timeout", VText, "stop after this long, e.g. 30s; with count, fewer events than count is an error"),
		},
		Run: runEvents}
}

func runEvents(ctx context.Context, e *Env, at Path, a Args) error {
	var since int64
	if a.Has("since") {
		n, err := strconv.ParseInt(a["since"], 10, 64)
		if err != nil || n < 0 {
			return usagef("events: since %q: expected an etcd revision (a whole number)", a["since"])
		}
		since = n
	}
	count := 0
	if a.Has("count") {
		count, _ = strconv.Atoi(a["count"])
	}
	var timeout time.Duration
	if a.Has("timeout") {
		d, err := time.ParseDuration(a["timeout"])
		if err != nil || d <= 0 {
			return usagef("events: timeout %q: expected a duration, e.g. 30s", a["timeout"])
		}
		timeout = d
	}
	fctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// On a terminal q, Ctrl-C and Ctrl-D stop, typed keys are not echoed
	// into the output; SIGINT stops quietly.
	if !e.structured() {
		if t, ok := openKeys(e.Out); ok {
			defer t.Restore()
			var cancel context.CancelFunc
			fctx, cancel = context.WithCancel(fctx)
			defer cancel()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt)
			defer signal.Stop(sigs)
			go func() {
				for {
					select {
					case <-fctx.Done():
						return
					case <-sigs:
						cancel()
						return
					case k, ok := <-t.Keys():
						if !ok || bytes.ContainsAny(k, "qQ\x03\x04") && k[0] != 0x1b {
							cancel()
							return
						}
					}
				}
			}()
		}
	}
	n, connects := 0, 0
	err := e.Client.Follow(fctx, client.EventOptions{Since: since, Reconnect: true}, func(ev client.StreamEvent) error {
		if ev.Name == model.EventConnected {
			connects++
			if !e.structured() {
				if connects == 1 {
					fmt.Fprintf(e.Err, "events of %s after revision %d (gateway %s); Ctrl-C stops\n", e.Client.URL(), ev.Event.Revision, ev.Event.Server)
				} else {
					fmt.Fprintf(e.Err, "reconnected after revision %d (gateway %s)\n", ev.Event.Revision, ev.Event.Server)
				}
			}
			return nil
		}
		if err := e.printEvent(ev, n); err != nil {
			return err
		}
		n++
		if count > 0 && n >= count {
			return client.Stop()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count > 0 && n < count && ctx.Err() == nil && errors.Is(fctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("events: %d of %d events within %v", n, count, timeout)
	}
	return nil
}

// printEvent prints one event: a line, or its document (JSON: one per
// line; YAML: documents).
func (e *Env) printEvent(ev client.StreamEvent, n int) error {
	switch e.Format {
	case FormatJSON:
		b, err := json.Marshal(ev.Event)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.Out, "%s\n", b)
		return err
	case FormatYAML:
		if n > 0 {
			fmt.Fprintln(e.Out, "---")
		}
		return e.emit(ev.Event)
	}
	_, err := fmt.Fprintln(e.Out, EventLine(ev.Name, ev.Event, time.Now()))
	return err
}

// EventLine is an event on one line: when (the event's time, else now),
// revision, kind and what happened.
func EventLine(name string, ev model.Event, now time.Time) string {
	when := now
	if ev.Time != nil {
		when = *ev.Time
	}
	kind := name
	if name == model.EventConfig && ev.Kind != "" {
		kind = ev.Kind
	}
	return fmt.Sprintf("%s  %7d  %-14s  %s", when.Local().Format("2006-01-02 15:04:05"), ev.Revision, kind, eventSummary(name, ev))
}

func eventSummary(name string, ev model.Event) string {
	switch name {
	case model.EventConfig:
		what := ev.Name
		switch {
		case ev.Kind == "lun" && ev.LUN != nil:
			what = "LUN " + strconv.FormatUint(*ev.LUN, 10)
		case what == "" && ev.Target != "":
			what = ev.Target
		case what == "":
			what = ev.Key
		}
		if ev.Target != "" && what != ev.Target {
			what += " of " + ev.Target
		}
		verb := map[string]string{"put": "written", "delete": "deleted"}[ev.Op]
		if verb == "" {
			verb = ev.Op
		}
		s := what + " " + verb
		if d := configDetail(ev); d != "" {
			s += " (" + d + ")"
		}
		return s
	case model.EventOwner:
		if ev.From == "" {
			return fmt.Sprintf("%s owned by %s (epoch %d)", ev.Disk, ev.To, ev.Epoch)
		}
		return fmt.Sprintf("%s owner %s -> %s (epoch %d)", ev.Disk, ev.From, ev.To, ev.Epoch)
	case model.EventFence:
		s := fmt.Sprintf("%s: %s fenced %s", ev.Disk, ev.Gateway, joinOr(ev.Clients, "no client"))
		if ev.From != "" {
			s += " of " + ev.From
		}
		if ev.Reason != "" {
			s += " (" + ev.Reason + ")"
		}
		if ev.Error != "" {
			s += "; error: " + ev.Error
		}
		return s
	case model.EventGateway:
		switch ev.Op {
		case "join":
			return ev.Gateway + " joined"
		case "leave":
			return ev.Gateway + " left (lease ended)"
		}
		return ev.Gateway + " " + ev.Op
	case model.EventCompacted:
		return fmt.Sprintf("history after revision %d is compacted; continuing after %d (read the state again)", ev.Since, ev.Revision)
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

// configDetail picks a few telling fields of a record written: a disk's
// size, a host's LUNs and CHAP user, a target's gateways. Secrets are
// masked by the API and never shown.
func configDetail(ev model.Event) string {
	if ev.Op != "put" || len(ev.Value) == 0 {
		return ""
	}
	var v map[string]any
	if json.Unmarshal(ev.Value, &v) != nil {
		return ""
	}
	var parts []string
	if s, ok := v["size"].(float64); ok && s > 0 {
		parts = append(parts, "size "+model.FormatSize(int64(s)))
	}
	if l, ok := v["luns"].([]any); ok && ev.Kind != "target" {
		var ids []string
		for _, x := range l {
			if f, ok := x.(float64); ok {
				ids = append(ids, strconv.FormatFloat(f, 'f', 0, 64))
			}
		}
		parts = append(parts, "LUNs "+joinOr(ids, "none"))
	}
	if d, ok := v["disk"].(string); ok && d != "" {
		parts = append(parts, "disk "+d)
	}
	if g, ok := v["gateways"].([]any); ok {
		var names []string
		for _, x := range g {
			if s, ok := x.(string); ok {
				names = append(names, s)
			}
		}
		parts = append(parts, "gateways "+joinOr(names, "none"))
	}
	if c, ok := v["chap"].(map[string]any); ok && c != nil {
		if u, _ := c["user"].(string); u != "" {
			parts = append(parts, "CHAP user "+u)
		}
	}
	return strings.Join(parts, ", ")
}
