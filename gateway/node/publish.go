package node

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// How the status record is kept up to date: a change is written at most
// once per publishMinInterval; an unchanged record is rewritten every
// publishRefresh (its updated_at shows readers it is current).
const (
	publishMinInterval = time.Second
	publishRefresh     = 30 * time.Second
	publishTimeout     = 5 * time.Second
)

// kickPublisher asks the publisher to look for changes now.
func (n *Node) kickPublisher() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// publishStatus keeps the status document in this gateway's peers/ record
// current until ctx ends. Changes the run loop makes kick it; sessions,
// which change without the run loop, are looked at every second.
func (n *Node) publishStatus(ctx context.Context) {
	tick := time.NewTicker(publishMinInterval)
	defer tick.Stop()
	var (
		last      []byte // the document last written, without updated_at
		lastWrite time.Time
		failing   bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-tick.C:
		}
		if wait := publishMinInterval - time.Since(lastWrite); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		p := publishedOf(n.Status())
		body, err := json.Marshal(p)
		if err != nil {
			n.log.Error("cannot encode the status record", "err", err)
			continue
		}
		if bytes.Equal(body, last) && time.Since(lastWrite) < publishRefresh {
			continue
		}
		p.UpdatedAt = time.Now().UTC()
		doc, err := json.Marshal(p)
		if err != nil {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err = n.peers.SetStatus(wctx, doc)
		cancel()
		lastWrite = time.Now()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			n.log.Warn("cannot publish this gateway's status; retrying", "err", err)
			failing = true
		case err == nil:
			if failing {
				n.log.Info("status published again")
			}
			failing = false
			last = body
		}
	}
}

// publishedOf is the part of a status a gateway publishes, with the
// session list bounded.
func publishedOf(s Status) Published {
	p := s.Published
	if len(p.Sessions) > MaxPublishedSessions {
		p.Sessions = p.Sessions[:MaxPublishedSessions]
		p.SessionsTruncated = true
	}
	return p
}
