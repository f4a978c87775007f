// Package stats publishes a gateway's I/O counters in etcd, compactly, so
// that the REST API of any gateway can report the rates of every LUN on
// every gateway over a window without asking the other gateways.
//
// Each gateway writes stats/<gateway> (bound to its liveness lease, so the
// record goes when the gateway does) every Interval while its counters
// change, and every Refresh while they do not. A record holds cumulative
// counters (commands and bytes by class, errors, read and write latency
// histograms) per LUN and for the whole gateway, the commands in flight
// and each LUN's ALUA state, plus an index of the revisions of the
// earlier records of the key (History). A reader takes the newest record
// and, through the index, the record written a window earlier from etcd's
// history (one Get at that revision), and computes rates from the two
// (Between).
package stats

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// KeyPrefix is where the records live, relative to the cluster prefix.
const KeyPrefix = "stats/"

// Key is the key of gateway's record under the cluster prefix.
func Key(prefix, gateway string) string { return prefix + KeyPrefix + gateway }

// Publishing cadence and bounds.
const (
	// Interval is how often a gateway looks at its counters and writes
	// them when they changed.
	Interval = 2 * time.Second
	// Refresh is how often an unchanged record is written anyway.
	Refresh = 30 * time.Second
	// MaxLUNs bounds the LUNs of a record (about 250 bytes each); the
	// rest are left out and LUNsTruncated says so.
	MaxLUNs = 1024
	// MaxWindow is the longest window the History index reaches back.
	MaxWindow = 5 * time.Minute
)

// Class indexes Counters.Commands.
const (
	ClassRead = iota
	ClassWrite
	ClassFlush
	ClassOther
	numClasses
)

// Counters are cumulative counters of a LUN or a gateway, as
// metrics.Counters but compact: commands by class, bytes, errors of any
// kind, and the latency histograms of reads and writes.
type Counters struct {
	// Commands by class: read, write, flush, other.
	Commands     [numClasses]uint64 `json:"cmds"`
	ReadBytes    uint64             `json:"rd_bytes"`
	WrittenBytes uint64             `json:"wr_bytes"`
	Errors       uint64             `json:"errors"`
	// InFlight is the queue depth at the time of the record.
	InFlight int64 `json:"in_flight"`
	// ReadLatency and WriteLatency run from arrival to status.
	ReadLatency  Hist `json:"rd_lat"`
	WriteLatency Hist `json:"wr_lat"`
	// BackendTime is the total backend time of the reads and writes, over
	// BackendCount of them.
	BackendTime  time.Duration `json:"backend_ns"`
	BackendCount uint64        `json:"backend_count"`
}

// compact reduces metrics.Counters.
func compact(c metrics.Counters) Counters {
	return Counters{
		Commands:     [numClasses]uint64{c.Read.Commands, c.Write.Commands, c.Flush.Commands, c.Other.Commands},
		ReadBytes:    c.ReadBytes,
		WrittenBytes: c.WrittenBytes,
		Errors:       c.Errors(),
		InFlight:     c.InFlight,
		ReadLatency:  Hist(c.Read.Latency),
		WriteLatency: Hist(c.Write.Latency),
		BackendTime:  c.Read.Backend.Sum + c.Write.Backend.Sum,
		BackendCount: c.Read.Backend.Count() + c.Write.Backend.Count(),
	}
}

// Total is the number of commands of every class.
func (c Counters) Total() uint64 {
	var n uint64
	for _, v := range c.Commands {
		n += v
	}
	return n
}

// Hist is a latency histogram (metrics.Histogram: non-cumulative counts
// in the buckets of metrics.BucketBounds, and their sum) that encodes as
// [sum in ns, index of the first bucket counted, counts...], without the
// empty buckets before the first count and after the last: most LUNs
// answer within a few neighbouring buckets.
type Hist metrics.Histogram

func (h Hist) MarshalJSON() ([]byte, error) {
	first, last := 0, len(h.Buckets)-1
	for first <= last && h.Buckets[first] == 0 {
		first++
	}
	for last >= first && h.Buckets[last] == 0 {
		last--
	}
	out := make([]uint64, 0, 2+max(0, last-first+1))
	out = append(out, uint64(max(h.Sum, 0)), uint64(min(first, len(h.Buckets))))
	if first <= last {
		out = append(out, h.Buckets[first:last+1]...)
	}
	return json.Marshal(out)
}

func (h *Hist) UnmarshalJSON(b []byte) error {
	var v []uint64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("stats: histogram: %w", err)
	}
	if len(v) < 2 || v[1] > uint64(len(h.Buckets)) || uint64(len(v)-2) > uint64(len(h.Buckets))-v[1] {
		return fmt.Errorf("stats: histogram %s: malformed", b)
	}
	*h = Hist{Sum: time.Duration(v[0])}
	copy(h.Buckets[v[1]:], v[2:])
	return nil
}

// LUN is one LUN's counters on the gateway.
type LUN struct {
	Target string `json:"target"`
	LUN    uint64 `json:"lun"`
	Disk   string `json:"disk,omitempty"`
	// ALUA is the gateway's access state of the LUN: active_optimized,
	// active_non_optimized, transitioning, ... (metrics.ALUAStateName).
	ALUA string `json:"alua"`
	// Since is when the counters started (the LUN was mapped).
	Since time.Time `json:"since"`
	Counters
}

// Record is what a gateway publishes in stats/<gateway>.
type Record struct {
	Gateway string `json:"gateway"`
	// Time is when the counters were read; Start when they started (the
	// daemon's start): both by the gateway's clock.
	Time  time.Time `json:"time"`
	Start time.Time `json:"start"`
	// Interval is the publishing interval: a record older than a few
	// intervals means the counters have not changed since.
	Interval time.Duration `json:"interval_ns"`
	Totals   Counters      `json:"totals"`
	LUNs     []LUN         `json:"luns"`
	// LUNsTruncated: more LUNs than MaxLUNs; the rest are left out.
	LUNsTruncated bool `json:"luns_truncated,omitempty"`
	// History indexes earlier records of the key, oldest first: every one
	// of the last 30 s, then about one per 15 s back to MaxWindow.
	History []Mark `json:"history,omitempty"`
}

// Mark is an earlier record: the etcd revision that wrote it and its Time.
// It encodes as [revision, unix milliseconds].
type Mark struct {
	Rev  int64
	Time time.Time
}

func (m Mark) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]int64{m.Rev, m.Time.UnixMilli()})
}

func (m *Mark) UnmarshalJSON(b []byte) error {
	var v [2]int64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("stats: history mark: %w", err)
	}
	m.Rev, m.Time = v[0], time.UnixMilli(v[1]).UTC()
	return nil
}

// FromSnapshot makes the record of a metrics snapshot (without History).
func FromSnapshot(s metrics.Snapshot) Record {
	r := Record{
		Gateway:  s.Gateway,
		Time:     s.Time.UTC(),
		Start:    s.Start.UTC(),
		Interval: Interval,
		Totals:   compact(s.Totals),
		LUNs:     make([]LUN, 0, min(len(s.LUNs), MaxLUNs)),
	}
	for i, l := range s.LUNs {
		if i == MaxLUNs {
			r.LUNsTruncated = true
			break
		}
		r.LUNs = append(r.LUNs, LUN{Target: l.Target, LUN: l.LUN, Disk: l.Disk, ALUA: l.ALUAState,
			Since: l.Since.UTC(), Counters: compact(l.Counters)})
	}
	return r
}

// sameCounters reports whether two records carry the same counters and
// states (their times and history aside).
func sameCounters(a, b Record) bool {
	if a.Gateway != b.Gateway || !a.Start.Equal(b.Start) || a.Totals != b.Totals ||
		len(a.LUNs) != len(b.LUNs) || a.LUNsTruncated != b.LUNsTruncated {
		return false
	}
	for i := range a.LUNs {
		x, y := a.LUNs[i], b.LUNs[i]
		if x.Target != y.Target || x.LUN != y.LUN || x.Disk != y.Disk || x.ALUA != y.ALUA ||
			!x.Since.Equal(y.Since) || x.Counters != y.Counters {
			return false
		}
	}
	return true
}
