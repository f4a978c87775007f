package metrics

import (
	"math"
	"time"
)

// Histogram is a latency histogram read at one moment: the number of
// observations in each bucket (not cumulative; bucket i holds latencies
// up to BucketBounds()[i] and above the previous bound, the last bucket
// the rest) and their sum.
type Histogram struct {
	Buckets [NumBuckets]uint64 `json:"buckets"`
	Sum     time.Duration      `json:"sum_ns"`
}

// Count is the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, b := range h.Buckets {
		n += b
	}
	return n
}

// Mean is the average latency, 0 without observations.
func (h Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.Sum / time.Duration(n)
}

// Sub returns the observations made between prev and h.
func (h Histogram) Sub(prev Histogram) Histogram {
	for i := range h.Buckets {
		h.Buckets[i] -= prev.Buckets[i]
	}
	h.Sum -= prev.Sum
	return h
}

// Add returns the observations of h and o together.
func (h Histogram) Add(o Histogram) Histogram {
	for i := range h.Buckets {
		h.Buckets[i] += o.Buckets[i]
	}
	h.Sum += o.Sum
	return h
}

// Quantile estimates the q-quantile (0 <= q <= 1) as Prometheus's
// histogram_quantile does: linear interpolation within the bucket that
// holds it, the lowest bucket starting at 0. A quantile in the +Inf
// bucket is reported as the highest bound. 0 without observations.
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(n)
	var seen uint64
	for i, b := range h.Buckets {
		if b == 0 || float64(seen+b) < rank {
			seen += b
			continue
		}
		if i == len(bucketBounds) {
			return time.Duration(bucketBounds[len(bucketBounds)-1])
		}
		lo := int64(0)
		if i > 0 {
			lo = bucketBounds[i-1]
		}
		hi := bucketBounds[i]
		frac := (rank - float64(seen)) / float64(b)
		return time.Duration(float64(lo) + frac*float64(hi-lo))
	}
	return time.Duration(bucketBounds[len(bucketBounds)-1])
}

// OpCounters are the counters of one command class.
type OpCounters struct {
	// Commands is the number of commands that ended (Latency.Count()).
	Commands uint64 `json:"commands"`
	// Latency runs from arrival to status; Backend is the execution part
	// of it, for the commands that executed.
	Latency Histogram `json:"latency"`
	Backend Histogram `json:"backend"`
}

func (o OpCounters) sub(p OpCounters) OpCounters {
	return OpCounters{Commands: o.Commands - p.Commands, Latency: o.Latency.Sub(p.Latency), Backend: o.Backend.Sub(p.Backend)}
}

func (o OpCounters) add(p OpCounters) OpCounters {
	return OpCounters{Commands: o.Commands + p.Commands, Latency: o.Latency.Add(p.Latency), Backend: o.Backend.Add(p.Backend)}
}

// Counters are the counters of a LUN, or of a whole gateway, read at one
// moment. Everything but InFlight only grows while the same LUN stays
// mapped (LUNSnapshot.Since), so that rates are differences of two reads.
type Counters struct {
	// InFlight are the commands arrived and not answered yet (the queue
	// depth the initiators keep).
	InFlight int64      `json:"in_flight"`
	Read     OpCounters `json:"read"`
	Write    OpCounters `json:"write"`
	Flush    OpCounters `json:"flush"`
	Other    OpCounters `json:"other"`
	// ReadBytes were sent to initiators, WrittenBytes received from them.
	ReadBytes    uint64 `json:"read_bytes"`
	WrittenBytes uint64 `json:"written_bytes"`
	// SenseKeys counts CHECK CONDITION by sense key (index: the key;
	// SenseKeyName names it); Statuses counts the other failed statuses
	// (StatusNames names them).
	SenseKeys [16]uint64          `json:"sense_keys"`
	Statuses  [numStatuses]uint64 `json:"statuses"`
}

// Op returns the counters of class op.
func (c *Counters) Op(op Op) *OpCounters {
	switch op {
	case OpRead:
		return &c.Read
	case OpWrite:
		return &c.Write
	case OpFlush:
		return &c.Flush
	}
	return &c.Other
}

// Commands is the number of commands of every class.
func (c Counters) Commands() uint64 {
	return c.Read.Commands + c.Write.Commands + c.Flush.Commands + c.Other.Commands
}

// Errors is the number of commands that ended with CHECK CONDITION or
// another failed status, or were aborted.
func (c Counters) Errors() uint64 {
	var n uint64
	for _, v := range c.SenseKeys {
		n += v
	}
	for _, v := range c.Statuses {
		n += v
	}
	return n
}

// Sub returns what was counted between prev and c; InFlight is c's.
func (c Counters) Sub(prev Counters) Counters {
	out := c
	for op := range NumOps {
		*out.Op(op) = c.Op(op).sub(*prev.Op(op))
	}
	out.ReadBytes -= prev.ReadBytes
	out.WrittenBytes -= prev.WrittenBytes
	for i := range out.SenseKeys {
		out.SenseKeys[i] -= prev.SenseKeys[i]
	}
	for i := range out.Statuses {
		out.Statuses[i] -= prev.Statuses[i]
	}
	return out
}

// Add returns c and o counted together (InFlight summed too).
func (c Counters) Add(o Counters) Counters {
	out := c
	for op := range NumOps {
		*out.Op(op) = c.Op(op).add(*o.Op(op))
	}
	out.InFlight += o.InFlight
	out.ReadBytes += o.ReadBytes
	out.WrittenBytes += o.WrittenBytes
	for i := range out.SenseKeys {
		out.SenseKeys[i] += o.SenseKeys[i]
	}
	for i := range out.Statuses {
		out.Statuses[i] += o.Statuses[i]
	}
	return out
}

// Rates are what a LUN or gateway did per second over a window, from two
// reads of its counters.
type Rates struct {
	IOPS, ReadIOPS, WriteIOPS float64
	// ReadBytesPerSec and WriteBytesPerSec count data moved.
	ReadBytesPerSec, WriteBytesPerSec float64
	ErrorsPerSec                      float64
	// Latency percentiles of the reads and writes of the window (0
	// without any), and the average of their backend part.
	P50, P99, BackendMean time.Duration
	// InFlight is the newer read's.
	InFlight int64
}

// RatesBetween computes the rates between two reads of the same counters
// taken d apart. A counter that went down (the LUN was mapped again, the
// gateway restarted) makes the window start from zero.
func RatesBetween(prev, cur Counters, d time.Duration) Rates {
	if d <= 0 {
		return Rates{InFlight: cur.InFlight}
	}
	if cur.Commands() < prev.Commands() || cur.ReadBytes < prev.ReadBytes || cur.WrittenBytes < prev.WrittenBytes {
		prev = Counters{}
	}
	delta := cur.Sub(prev)
	s := d.Seconds()
	io := delta.Read.Latency.Add(delta.Write.Latency)
	backend := delta.Read.Backend.Add(delta.Write.Backend)
	return Rates{
		IOPS:             float64(delta.Commands()) / s,
		ReadIOPS:         float64(delta.Read.Commands) / s,
		WriteIOPS:        float64(delta.Write.Commands) / s,
		ReadBytesPerSec:  float64(delta.ReadBytes) / s,
		WriteBytesPerSec: float64(delta.WrittenBytes) / s,
		ErrorsPerSec:     float64(delta.Errors()) / s,
		P50:              io.Quantile(0.5),
		P99:              io.Quantile(0.99),
		BackendMean:      backend.Mean(),
		InFlight:         cur.InFlight,
	}
}

// LUNSnapshot is one LUN's counters with its labels.
type LUNSnapshot struct {
	LUNInfo
	// Since is when these counters started: a LUN mapped again (another
	// disk at the same number) starts from zero.
	Since time.Time `json:"since"`
	// ALUAState is this gateway's asymmetric access state for the LUN
	// ("active_optimized", "active_non_optimized", "transitioning", ...).
	ALUAState string   `json:"alua_state"`
	Counters  Counters `json:"counters"`
}

// SessionSnapshot is one session's counters.
type SessionSnapshot struct {
	SessionInfo
	Commands     uint64 `json:"commands"`
	Errors       uint64 `json:"errors"`
	ReadBytes    uint64 `json:"read_bytes"`
	WrittenBytes uint64 `json:"written_bytes"`
}

// DiskEvents counts the ownership events of one disk on this gateway.
type DiskEvents struct {
	Disk string `json:"disk"`
	// OwnerChanges: the disk's owner changed (seen by every gateway).
	OwnerChanges uint64 `json:"owner_changes"`
	// Takeovers this gateway attempted, by result: "claimed" (it became
	// the owner), "conflict" (another gateway claimed first), "failed".
	Takeovers map[string]uint64 `json:"takeovers,omitempty"`
	// FencedClients: lock holders this gateway fenced (OSD blocklist);
	// FenceErrors: fencing attempts that failed.
	FencedClients uint64 `json:"fenced_clients"`
	FenceErrors   uint64 `json:"fence_errors"`
	// WriteStalls: writes that waited for another client's lock longer
	// than the stall timeout.
	WriteStalls uint64 `json:"write_stalls"`
}

// Snapshot is everything the gateway counts, read at one moment.
type Snapshot struct {
	Gateway string    `json:"gateway"`
	Version string    `json:"version,omitempty"`
	Start   time.Time `json:"start"`
	Time    time.Time `json:"time"`
	// Totals are the gateway's: every LUN, those no longer mapped and
	// commands addressed to no LUN included.
	Totals   Counters          `json:"totals"`
	LUNs     []LUNSnapshot     `json:"luns"`
	Sessions []SessionSnapshot `json:"sessions"`
	Disks    []DiskEvents      `json:"disks"`
}
