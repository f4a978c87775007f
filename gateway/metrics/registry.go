package metrics

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Registry.
type Options struct {
	// Gateway is this gateway's name, the gateway label of every metric.
	Gateway string
	// Version is the daemon's version (rbdgw_gateway_info).
	Version string
}

// Registry holds every counter of one gateway: per LUN, per session, the
// gateway's totals and the ALUA ownership events. The reconciler maps and
// unmaps LUNs (SetLUN, RemoveLUN), the iSCSI server registers sessions and
// counts commands, package alua reports ownership events; scrapes and the
// stats API read it all with Snapshot. A nil *Registry counts nothing, so
// metrics can be left off.
type Registry struct {
	gateway string
	version string
	start   time.Time
	// gen changes whenever a LUN's counters are replaced or removed, so
	// that callers caching LUN look up again.
	gen  atomic.Uint64
	alua atomic.Pointer[func(disk string) uint8]

	mu       sync.Mutex
	luns     map[lunKey]*LUN
	retired  []retiredLUN
	folded   Counters // LUNs removed long enough ago
	unmapped *LUN     // commands addressed to no mapped LUN
	sessions map[*Session]struct{}
	disks    map[string]*DiskEvents
}

type lunKey struct {
	target string
	lun    uint64
}

// retiredLUN is a LUN no longer mapped whose last commands may still
// complete; it is folded into the totals after retireGrace.
type retiredLUN struct {
	lun *LUN
	at  time.Time
}

const retireGrace = 10 * time.Second

// NewRegistry returns a registry with no LUNs.
func NewRegistry(opts Options) *Registry {
	return &Registry{
		gateway:  opts.Gateway,
		version:  opts.Version,
		start:    time.Now(),
		luns:     make(map[lunKey]*LUN),
		unmapped: newLUN(LUNInfo{}),
		sessions: make(map[*Session]struct{}),
		disks:    make(map[string]*DiskEvents),
	}
}

// Gateway is the gateway label.
func (r *Registry) Gateway() string { return r.gateway }

// SetALUAState sets how the access state of a disk is read at scrape time
// (an SPC-4 asymmetric access state code, package alua's Provider.State);
// without it every LUN is Active/Optimized, as on a standalone gateway.
func (r *Registry) SetALUAState(f func(disk string) uint8) {
	if r != nil {
		r.alua.Store(&f)
	}
}

// Generation changes whenever a LUN lookup may give another answer.
func (r *Registry) Generation() uint64 { return r.gen.Load() }

// SetLUN maps the counters of LUN lun of target to info. Counters already
// there for the same disk are kept; another disk at the same LUN starts
// from zero.
func (r *Registry) SetLUN(info LUNInfo) {
	if r == nil {
		return
	}
	k := lunKey{info.Target, info.LUN}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.luns[k]; cur != nil {
		if cur.info == info {
			return
		}
		r.retireLocked(cur)
	}
	r.luns[k] = newLUN(info)
	r.gen.Add(1)
}

// RemoveLUN drops the counters of LUN lun of target; the gateway's totals
// keep what they counted.
func (r *Registry) RemoveLUN(target string, lun uint64) {
	if r == nil {
		return
	}
	k := lunKey{target, lun}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.luns[k]; cur != nil {
		delete(r.luns, k)
		r.retireLocked(cur)
		r.gen.Add(1)
	}
}

func (r *Registry) retireLocked(l *LUN) {
	r.retired = append(r.retired, retiredLUN{lun: l, at: time.Now()})
}

// LUN returns the counters of LUN lun of target, or those of commands
// addressed to no mapped LUN; nil when r is nil. Callers cache the answer
// until Generation changes.
func (r *Registry) LUN(target string, lun uint64) *LUN {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.luns[lunKey{target, lun}]; l != nil {
		return l
	}
	return r.unmapped
}

// AddSession registers the counters of a session that logged in.
func (r *Registry) AddSession(info SessionInfo) *Session {
	if r == nil {
		return nil
	}
	s := &Session{info: info}
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// RemoveSession forgets a session that ended.
func (r *Registry) RemoveSession(s *Session) {
	if r == nil || s == nil {
		return
	}
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
}

// Ownership events, reported by package alua.

// OwnerChanged counts a change of disk's owner.
func (r *Registry) OwnerChanged(disk string) {
	r.disk(disk, func(d *DiskEvents) { d.OwnerChanges++ })
}

// Takeover counts a takeover of disk this gateway attempted; result is
// "claimed", "conflict" or "failed".
func (r *Registry) Takeover(disk, result string) {
	r.disk(disk, func(d *DiskEvents) {
		if d.Takeovers == nil {
			d.Takeovers = map[string]uint64{}
		}
		d.Takeovers[result]++
	})
}

// Fenced counts lock holders of disk's image fenced by this gateway, and
// fencing attempts that failed.
func (r *Registry) Fenced(disk string, fenced int, failed bool) {
	r.disk(disk, func(d *DiskEvents) {
		d.FencedClients += uint64(max(fenced, 0))
		if failed {
			d.FenceErrors++
		}
	})
}

// WriteStalled counts a write on disk that waited for another client's
// lock longer than the stall timeout.
func (r *Registry) WriteStalled(disk string) {
	r.disk(disk, func(d *DiskEvents) { d.WriteStalls++ })
}

func (r *Registry) disk(disk string, f func(*DiskEvents)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.disks[disk]
	if d == nil {
		d = &DiskEvents{Disk: disk}
		r.disks[disk] = d
	}
	f(d)
}

// ALUA access state codes (SPC-4 5.15.2) and their label values.
var aluaStateNames = map[uint8]string{
	0x0: "active_optimized",
	0x1: "active_non_optimized",
	0x2: "standby",
	0x3: "unavailable",
	0x4: "lba_dependent",
	0xe: "offline",
	0xf: "transitioning",
}

// ALUAStateName names an asymmetric access state code.
func ALUAStateName(code uint8) string {
	if n, ok := aluaStateNames[code]; ok {
		return n
	}
	return "unknown"
}

// Snapshot reads every counter.
func (r *Registry) Snapshot() Snapshot {
	if r == nil {
		return Snapshot{Time: time.Now()}
	}
	var state func(string) uint8
	if f := r.alua.Load(); f != nil {
		state = *f
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{
		Gateway:  r.gateway,
		Version:  r.version,
		Start:    r.start,
		Time:     now,
		LUNs:     make([]LUNSnapshot, 0, len(r.luns)),
		Sessions: make([]SessionSnapshot, 0, len(r.sessions)),
		Disks:    make([]DiskEvents, 0, len(r.disks)),
	}
	// Removed LUNs whose last commands had time to complete join the
	// folded totals for good.
	kept := r.retired[:0]
	for _, rl := range r.retired {
		if now.Sub(rl.at) >= retireGrace && rl.lun.inFlight.Load() == 0 {
			r.folded = r.folded.Add(rl.lun.load())
			continue
		}
		kept = append(kept, rl)
	}
	clear(r.retired[len(kept):])
	r.retired = kept

	totals := r.folded.Add(r.unmapped.load())
	for _, rl := range r.retired {
		totals = totals.Add(rl.lun.load())
	}
	for _, l := range r.luns {
		c := l.load()
		totals = totals.Add(c)
		alua := uint8(0) // Active/Optimized
		if state != nil && l.info.Disk != "" {
			alua = state(l.info.Disk)
		}
		s.LUNs = append(s.LUNs, LUNSnapshot{LUNInfo: l.info, Since: l.since, ALUAState: ALUAStateName(alua), Counters: c})
	}
	s.Totals = totals
	slices.SortFunc(s.LUNs, func(a, b LUNSnapshot) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.LUN, b.LUN))
	})
	for ss := range r.sessions {
		s.Sessions = append(s.Sessions, SessionSnapshot{
			SessionInfo:  ss.info,
			Commands:     ss.commands.Load(),
			Errors:       ss.errors.Load(),
			ReadBytes:    ss.readB.Load(),
			WrittenBytes: ss.writtenB.Load(),
		})
	}
	slices.SortFunc(s.Sessions, func(a, b SessionSnapshot) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Initiator, b.Initiator),
			cmp.Compare(a.ISID, b.ISID), cmp.Compare(a.TSIH, b.TSIH))
	})
	for _, d := range r.disks {
		c := *d
		if d.Takeovers != nil {
			c.Takeovers = make(map[string]uint64, len(d.Takeovers))
			for k, v := range d.Takeovers {
				c.Takeovers[k] = v
			}
		}
		s.Disks = append(s.Disks, c)
	}
	slices.SortFunc(s.Disks, func(a, b DiskEvents) int { return cmp.Compare(a.Disk, b.Disk) })
	return s
}
