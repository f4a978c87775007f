package stats

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// Rates are what a LUN or a gateway did per second over a window.
type Rates struct {
	// Window is the time between the two reads of the counters; 0 when
	// there was only one (the rates are then 0).
	Window                      time.Duration
	IOPS, ReadIOPS, WriteIOPS   float64
	ReadBytesPS, WrittenBytesPS float64
	ErrorsPS                    float64
	// P50 and P99 are the latency percentiles of the reads and writes of
	// the window (0 without any); BackendMean the mean backend part.
	P50, P99, BackendMean time.Duration
	// QueueDepth is the newer read's commands in flight.
	QueueDepth int64
}

// Between computes the rates between two reads of the same counters taken
// d apart. A counter that went down (the counters started again) makes
// the window start from zero.
func Between(prev, cur Counters, d time.Duration) Rates {
	if d <= 0 {
		return Rates{QueueDepth: cur.InFlight}
	}
	if cur.Total() < prev.Total() || cur.ReadBytes < prev.ReadBytes || cur.WrittenBytes < prev.WrittenBytes {
		prev = Counters{}
	}
	s := d.Seconds()
	per := func(a, b uint64) float64 { return float64(a-b) / s }
	reads := metrics.Histogram(cur.ReadLatency).Sub(metrics.Histogram(prev.ReadLatency))
	lat := reads.Add(metrics.Histogram(cur.WriteLatency).Sub(metrics.Histogram(prev.WriteLatency)))
	r := Rates{
		Window:         d,
		IOPS:           per(cur.Total(), prev.Total()),
		ReadIOPS:       per(cur.Commands[ClassRead], prev.Commands[ClassRead]),
		WriteIOPS:      per(cur.Commands[ClassWrite], prev.Commands[ClassWrite]),
		ReadBytesPS:    per(cur.ReadBytes, prev.ReadBytes),
		WrittenBytesPS: per(cur.WrittenBytes, prev.WrittenBytes),
		ErrorsPS:       per(cur.Errors, prev.Errors),
		P50:            lat.Quantile(0.5),
		P99:            lat.Quantile(0.99),
		QueueDepth:     cur.InFlight,
	}
	if n := cur.BackendCount - prev.BackendCount; n > 0 && cur.BackendCount >= prev.BackendCount {
		r.BackendMean = (cur.BackendTime - prev.BackendTime) / time.Duration(n)
	}
	return r
}

// Window is a gateway's newest record and the base its rates are
// computed from.
type Window struct {
	Cur Record
	// AsOf is when Cur's counters are taken to hold: its Time, or the
	// reader's clock when the record is older than a few intervals (an
	// unchanged record is not rewritten until Refresh).
	AsOf time.Time
	// Base is the record written a window before AsOf (or the oldest one
	// after that the history still has); nil when the counters started
	// within the window (every rate then counts from zero at Start, or at
	// a LUN's Since) or when etcd's history no longer has it (Unavailable).
	Base *Record
	// Unavailable: the records of the window were compacted away; the
	// rates are unknown.
	Unavailable bool
}

// GatewayRates are the rates of a gateway's totals over the window.
func (w Window) GatewayRates() Rates {
	if w.Unavailable {
		return Rates{QueueDepth: w.Cur.Totals.InFlight}
	}
	base, at := Counters{}, w.Cur.Start
	if w.Base != nil && w.Base.Start.Equal(w.Cur.Start) {
		base, at = w.Base.Totals, w.Base.Time
	}
	return Between(base, w.Cur.Totals, w.AsOf.Sub(at))
}

// LUNRates are the rates of each LUN of Cur over the window, in Cur's
// order.
func (w Window) LUNRates() []Rates {
	out := make([]Rates, len(w.Cur.LUNs))
	type key struct {
		target string
		lun    uint64
	}
	var prev map[key]LUN
	if w.Base != nil && !w.Unavailable {
		prev = make(map[key]LUN, len(w.Base.LUNs))
		for _, l := range w.Base.LUNs {
			prev[key{l.Target, l.LUN}] = l
		}
	}
	for i, l := range w.Cur.LUNs {
		if w.Unavailable {
			out[i] = Rates{QueueDepth: l.InFlight}
			continue
		}
		base, at := Counters{}, l.Since
		if p, ok := prev[key{l.Target, l.LUN}]; ok && p.Since.Equal(l.Since) && p.Disk == l.Disk {
			base, at = p.Counters, w.Base.Time
		} else if w.Base != nil && w.Base.Time.After(at) && w.Base.Start.Equal(w.Cur.Start) && !l.Since.After(w.Base.Time) {
			// Mapped before the base record but left out of it (truncated).
			out[i] = Rates{QueueDepth: l.InFlight}
			continue
		}
		out[i] = Between(base, l.Counters, w.AsOf.Sub(at))
	}
	return out
}
