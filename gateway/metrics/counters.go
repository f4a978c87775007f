package metrics

import (
	"sync/atomic"
	"time"
)

// Op is the class of a SCSI command, as the counters and latency
// histograms split them.
type Op uint8

// Command classes.
const (
	OpRead  Op = iota // READ (6/10/12/16)
	OpWrite           // WRITE, WRITE AND VERIFY, WRITE SAME, COMPARE AND WRITE, ORWRITE, WRITE ATOMIC
	OpFlush           // SYNCHRONIZE CACHE (10/16)
	OpOther           // everything else: INQUIRY, TEST UNIT READY, UNMAP, reservations, ...
	NumOps
)

var opNames = [NumOps]string{"read", "write", "flush", "other"}

func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "unknown"
}

// opClass maps an operation code to its class.
var opClass = func() (t [256]Op) {
	for i := range t {
		t[i] = OpOther
	}
	for _, c := range []byte{0x08, 0x28, 0xa8, 0x88} {
		t[c] = OpRead
	}
	for _, c := range []byte{
		0x0a, 0x2a, 0xaa, 0x8a, // WRITE (6/10/12/16)
		0x2e, 0xae, 0x8e, // WRITE AND VERIFY (10/12/16)
		0x41, 0x93, // WRITE SAME (10/16)
		0x89, // COMPARE AND WRITE
		0x8b, // ORWRITE (16)
		0x9c, // WRITE ATOMIC (16)
	} {
		t[c] = OpWrite
	}
	t[0x35], t[0x91] = OpFlush, OpFlush
	return t
}()

// Classify returns the class of a command from its CDB.
func Classify(cdb []byte) Op {
	if len(cdb) == 0 {
		return OpOther
	}
	return opClass[cdb[0]]
}

// bucketBounds are the upper bounds of the latency histogram buckets, in
// nanoseconds; a last bucket (+Inf) holds the rest. They cover a memory
// image answering in microseconds as well as RBD in milliseconds and an
// OSD that stalls for seconds.
var bucketBounds = [...]int64{
	10e3, 25e3, 50e3, 100e3, 250e3, 500e3, // µs
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, // ms
	1e9, 5e9, // s
}

// NumBuckets is the number of buckets of a latency histogram, the +Inf
// bucket included.
const NumBuckets = len(bucketBounds) + 1

// BucketBounds returns the upper bounds of the latency buckets (the +Inf
// bucket excluded), in increasing order.
func BucketBounds() []time.Duration {
	out := make([]time.Duration, len(bucketBounds))
	for i, b := range bucketBounds {
		out[i] = time.Duration(b)
	}
	return out
}

// histogram is a latency histogram of fixed buckets, counted with atomics.
// Its count is the sum of its buckets, so that a reader sees a count and
// buckets that agree.
type histogram struct {
	buckets [NumBuckets]atomic.Uint64
	sum     atomic.Uint64 // nanoseconds; wraps after 584 years of latency
}

func (h *histogram) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := 0
	for i < len(bucketBounds) && ns > bucketBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(uint64(ns))
}

func (h *histogram) load() Histogram {
	var out Histogram
	for i := range h.buckets {
		out.Buckets[i] = h.buckets[i].Load()
	}
	out.Sum = time.Duration(h.sum.Load())
	return out
}

// Status classes counted as errors besides CHECK CONDITION, which is
// counted by sense key.
const (
	statusBusy = iota
	statusReservationConflict
	statusTaskSetFull
	statusACAActive
	statusTaskAborted // TASK ABORTED status (TAS=1)
	statusAborted     // aborted by task management, no response (TAS=0)
	statusOther
	numStatuses
)

var statusNames = [numStatuses]string{
	"busy", "reservation_conflict", "task_set_full", "aca_active", "task_aborted", "aborted", "other",
}

// StatusNames names the entries of Counters.Statuses, in order.
func StatusNames() []string { return statusNames[:] }

var senseKeyNames = [16]string{
	"no_sense", "recovered_error", "not_ready", "medium_error", "hardware_error",
	"illegal_request", "unit_attention", "data_protect", "blank_check", "vendor_specific",
	"copy_aborted", "aborted_command", "reserved_0c", "volume_overflow", "miscompare", "completed",
}

// SenseKeyName names a sense key (SPC-4 table 48) as the metrics label it.
func SenseKeyName(key uint8) string { return senseKeyNames[key&0x0f] }

// senseKey extracts the sense key of fixed (70h/71h) or descriptor
// (72h/73h) format sense data.
func senseKey(sense []byte) (uint8, bool) {
	if len(sense) < 3 {
		return 0, false
	}
	switch sense[0] & 0x7f {
	case 0x70, 0x71:
		return sense[2] & 0x0f, true
	case 0x72, 0x73:
		return sense[1] & 0x0f, true
	}
	return 0, false
}

// SAM status codes the counters tell apart.
const (
	samGood                = 0x00
	samCheckCondition      = 0x02
	samConditionMet        = 0x04
	samBusy                = 0x08
	samReservationConflict = 0x18
	samTaskSetFull         = 0x28
	samACAActive           = 0x30
	samTaskAborted         = 0x40
)

// LUN holds the counters of one LUN of one target on this gateway. The
// transport finds it once per connection and LUN (Registry.LUN) and counts
// every command with a few atomic additions: no lock, no allocation.
type LUN struct {
	info  LUNInfo
	since time.Time

	inFlight atomic.Int64
	// latency runs from the command's arrival to its status being queued
	// for the initiator; backend is the part spent executing it (the
	// device server and the image).
	latency [NumOps]histogram
	backend [NumOps]histogram

	readBytes, writtenBytes atomic.Uint64
	senseKeys               [16]atomic.Uint64
	statuses                [numStatuses]atomic.Uint64
}

// LUNInfo names a LUN in the labels of its metrics.
type LUNInfo struct {
	Target string `json:"target"`
	LUN    uint64 `json:"lun"`
	// Disk is the disk's id in the configuration; Pool and Image name its
	// RBD image (empty for other backends); Backend is "rbd", "file" or
	// "memory".
	Disk    string `json:"disk,omitempty"`
	Pool    string `json:"pool,omitempty"`
	Image   string `json:"image,omitempty"`
	Backend string `json:"backend,omitempty"`
}

func newLUN(info LUNInfo) *LUN {
	return &LUN{info: info, since: time.Now()}
}

// Info returns the LUN's labels.
func (l *LUN) Info() LUNInfo { return l.info }

// Arrived counts a command that arrived and is now in flight.
func (l *LUN) Arrived() { l.inFlight.Add(1) }

// Outcome is how a command ended, for LUN.Done.
type Outcome struct {
	Op Op
	// Latency runs from arrival to status; Backend is the time the
	// command executed, when it did (Executed).
	Latency, Backend time.Duration
	Executed         bool
	Status           uint8  // SAM status
	Sense            []byte // with CHECK CONDITION
	// Aborted: ended by task management; Responded: TASK ABORTED status
	// was sent for it (TAS=1).
	Aborted, Responded bool
	// ReadBytes went to the initiator (Data-In), WrittenBytes came from it
	// (Data-Out handed to the device server).
	ReadBytes, WrittenBytes uint64
}

// Done counts a command that arrived (Arrived) and ended with o.
func (l *LUN) Done(o *Outcome) {
	l.inFlight.Add(-1)
	l.record(o)
}

// Dropped counts a command that arrived and ended without an outcome: its
// connection went away first.
func (l *LUN) Dropped() {
	l.inFlight.Add(-1)
	l.statuses[statusAborted].Add(1)
}

func (l *LUN) record(o *Outcome) {
	op := o.Op
	if op >= NumOps {
		op = OpOther
	}
	l.latency[op].observe(int64(o.Latency))
	if o.Executed {
		l.backend[op].observe(int64(o.Backend))
	}
	if o.ReadBytes > 0 {
		l.readBytes.Add(o.ReadBytes)
	}
	if o.WrittenBytes > 0 {
		l.writtenBytes.Add(o.WrittenBytes)
	}
	if o.Aborted {
		if o.Responded {
			l.statuses[statusTaskAborted].Add(1)
		} else {
			l.statuses[statusAborted].Add(1)
		}
		return
	}
	switch o.Status {
	case samGood, samConditionMet:
	case samCheckCondition:
		if k, ok := senseKey(o.Sense); ok {
			l.senseKeys[k].Add(1)
		} else {
			l.statuses[statusOther].Add(1)
		}
	case samBusy:
		l.statuses[statusBusy].Add(1)
	case samReservationConflict:
		l.statuses[statusReservationConflict].Add(1)
	case samTaskSetFull:
		l.statuses[statusTaskSetFull].Add(1)
	case samACAActive:
		l.statuses[statusACAActive].Add(1)
	case samTaskAborted:
		l.statuses[statusTaskAborted].Add(1)
	default:
		l.statuses[statusOther].Add(1)
	}
}

// load reads the counters.
func (l *LUN) load() Counters {
	var c Counters
	c.InFlight = l.inFlight.Load()
	for op := range NumOps {
		o := c.Op(op)
		o.Latency = l.latency[op].load()
		o.Backend = l.backend[op].load()
		o.Commands = o.Latency.Count()
	}
	c.ReadBytes = l.readBytes.Load()
	c.WrittenBytes = l.writtenBytes.Load()
	for i := range l.senseKeys {
		c.SenseKeys[i] = l.senseKeys[i].Load()
	}
	for i := range l.statuses {
		c.Statuses[i] = l.statuses[i].Load()
	}
	return c
}

// Session holds the counters of one iSCSI session. The session's serve
// loop counts; scrapes read.
type Session struct {
	info     SessionInfo
	commands atomic.Uint64
	errors   atomic.Uint64
	readB    atomic.Uint64
	writtenB atomic.Uint64
}

// SessionInfo names a session.
type SessionInfo struct {
	Target    string    `json:"target"`
	Initiator string    `json:"initiator"`
	ISID      string    `json:"isid"`
	TSIH      uint16    `json:"tsih"`
	LoginTime time.Time `json:"login_time"`
}

// Done counts one command of the session.
func (s *Session) Done(o *Outcome) {
	s.commands.Add(1)
	if o.Aborted || (o.Status != samGood && o.Status != samConditionMet) {
		s.errors.Add(1)
	}
	if o.ReadBytes > 0 {
		s.readB.Add(o.ReadBytes)
	}
	if o.WrittenBytes > 0 {
		s.writtenB.Add(o.WrittenBytes)
	}
}
