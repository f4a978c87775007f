package iscsi

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// tapPDU is what a wireTap noted of one PDU the target sent.
type tapPDU struct {
	op                         pdu.Opcode
	itt                        uint32
	statSN, expCmdSN, maxCmdSN uint32
	status                     bool // carries a StatSN the initiator acknowledges
	snFields                   bool // carries ExpCmdSN and MaxCmdSN
	tmfResp                    uint8
}

// wireTap is a net.Conn that hands a copy of every byte the initiator reads
// to a parser of its own, so that a test can check the target's whole
// output in wire order (StatSN order, one status per task) independently
// of what the initiator under test makes of it.
type wireTap struct {
	net.Conn
	pw   *io.PipeWriter
	done chan struct{}

	mu   sync.Mutex
	pdus []tapPDU
	err  error
}

// dialTap connects; rcvBuf > 0 sets the socket's receive buffer, before
// the connection exists (shrinking it later leaves Linux trickling data
// through a window it shrank).
func dialTap(addr string, rcvBuf int) (*wireTap, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	w := &wireTap{Conn: nc, pw: pw, done: make(chan struct{})}
	go w.parse(pr)
	return w, nil
}

func (w *wireTap) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		_, _ = w.pw.Write(b[:n])
	}
	return n, err
}

func (w *wireTap) parse(r io.Reader) {
	defer close(w.done)
	rd := pdu.NewReader(r)
	rd.SetMaxDataSegmentLength(1 << 24)
	for {
		p, err := rd.Read()
		if err != nil {
			if err != io.EOF && err != io.ErrClosedPipe {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, r)
			return
		}
		b := &p.BHS
		t := tapPDU{op: b.Opcode(), itt: b.ITT(), statSN: binary.BigEndian.Uint32(b[24:28])}
		switch t.op {
		case pdu.OpSCSIResponse, pdu.OpTaskMgmtResp, pdu.OpTextResp, pdu.OpLogoutResp,
			pdu.OpReject, pdu.OpAsyncMsg, pdu.OpLoginResp:
			t.status = true
		case pdu.OpNOPIn:
			t.status = t.itt != iscsitest.ReservedTag
		case pdu.OpDataIn:
			t.status = b[1]&0x01 != 0
		}
		if t.op != pdu.OpLoginResp {
			t.snFields = true
			t.expCmdSN = binary.BigEndian.Uint32(b[28:32])
			t.maxCmdSN = binary.BigEndian.Uint32(b[32:36])
		}
		if t.op == pdu.OpTaskMgmtResp {
			t.tmfResp = b[2]
		}
		p.Release()
		w.mu.Lock()
		w.pdus = append(w.pdus, t)
		w.mu.Unlock()
	}
}

// finish closes the connection and returns what the target sent.
func (w *wireTap) finish() ([]tapPDU, error) {
	w.Conn.Close()
	w.pw.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pdus, w.err
}

// check closes the connection and checks what the target sent on it
// (checkWire).
func (w *wireTap) check(aborted map[uint32][]uint32) error {
	pdus, err := w.finish()
	if err != nil {
		return fmt.Errorf("parsing the target's output: %w", err)
	}
	return checkWire(pdus, aborted)
}

// checkWire checks one connection's output: StatSN advances by exactly one
// per status from the login on, PDUs that carry the next StatSN without
// consuming it carry that one, ExpCmdSN and MaxCmdSN never go back, no task
// gets two statuses, and no task aborted by a TMF that answered Function
// Complete gets a status after that answer (aborted[tmfITT] lists the
// tasks it covered).
func checkWire(pdus []tapPDU, aborted map[uint32][]uint32) error {
	var next uint32
	started := false
	var exp, maxSN uint32
	snSeen := false
	statuses := make(map[uint32]int)
	dead := make(map[uint32]bool)
	for i, p := range pdus {
		if p.op == pdu.OpLoginResp {
			next, started = p.statSN+1, true
			continue
		}
		if !started {
			return fmt.Errorf("PDU %d (%v) before the login response", i, p.op)
		}
		switch {
		case p.status:
			if p.statSN != next {
				return fmt.Errorf("PDU %d (%v ITT %#x): StatSN %d, want %d", i, p.op, p.itt, p.statSN, next)
			}
			next++
		case p.op == pdu.OpR2T || p.op == pdu.OpNOPIn:
			if p.statSN != next {
				return fmt.Errorf("PDU %d (%v ITT %#x): StatSN %d, want the next one, %d", i, p.op, p.itt, p.statSN, next)
			}
		}
		if p.snFields {
			if snSeen && (snLess(p.expCmdSN, exp) || snLess(p.maxCmdSN, maxSN)) {
				return fmt.Errorf("PDU %d (%v): ExpCmdSN/MaxCmdSN went back from %d/%d to %d/%d",
					i, p.op, exp, maxSN, p.expCmdSN, p.maxCmdSN)
			}
			exp, maxSN, snSeen = p.expCmdSN, p.maxCmdSN, true
		}
		isTaskStatus := p.op == pdu.OpSCSIResponse || p.op == pdu.OpDataIn && p.status
		if isTaskStatus {
			if dead[p.itt] {
				return fmt.Errorf("PDU %d: status for ITT %#x after the TMF that aborted it", i, p.itt)
			}
			if statuses[p.itt]++; statuses[p.itt] > 1 {
				return fmt.Errorf("PDU %d: second status for ITT %#x", i, p.itt)
			}
		}
		if p.op == pdu.OpTaskMgmtResp && p.tmfResp == pdu.TMFRespComplete {
			for _, itt := range aborted[p.itt] {
				dead[itt] = true
			}
		}
	}
	return nil
}

// stressLU is the logical unit one stress worker has to itself, so that
// its LU RESETs abort only its own tasks.
type stressLU struct {
	lun   uint64
	fault *rbdbackend.FaultImage
}

func addStressLU(t *testing.T, e *testEnv, lun uint64) stressLU {
	t.Helper()
	img := rbdbackend.NewMemoryImage(8 << 20)
	fault := rbdbackend.NewFaultImage(img)
	var luImg rbdbackend.Image = fault
	if lun%2 == 0 {
		luImg = newAsyncImage(t, fault)
	}
	lu, err := scsi.NewLU(luImg, scsi.LUConfig{Name: fmt.Sprintf("stress%d", lun), BlockSize: testBlockSize, Logger: slog.New(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	e.device.SetLU(lun, lu)
	// SYNCHRONIZE CACHE is the slow command: never inline, long enough
	// for an ABORT TASK or LU RESET to catch it running.
	fault.SetLatency(rbdbackend.OpFlush, 20*time.Millisecond)
	return stressLU{lun: lun, fault: fault}
}

// asyncImage starts requests itself (rbdbackend.AsyncIO), as an RBD image
// does, completing each on a goroutine of its own: the READs and WRITEs of
// its LU that do not run inline are started by the serve loop
// (scsi.Target.Start) and end through task.Done.
type asyncImage struct {
	*rbdbackend.FaultImage
	completed chan func(*rbdbackend.Batch)
}

// newAsyncImage starts the image's deliverer: like librbd's completion
// goroutine it delivers what completed in batches (rbdbackend.Batch),
// those that completed together, and ends each batch.
func newAsyncImage(t *testing.T, fault *rbdbackend.FaultImage) *asyncImage {
	a := &asyncImage{FaultImage: fault, completed: make(chan func(*rbdbackend.Batch), 1024)}
	deliverInBatches(t, a.completed, func(deliver func(*rbdbackend.Batch), b *rbdbackend.Batch) { deliver(b) })
	return a
}

func (a *asyncImage) AsyncFor() rbdbackend.Image { return a }

func (a *asyncImage) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	go func() {
		_, err := a.ReadAt(p, off)
		a.completed <- func(b *rbdbackend.Batch) { done.Complete(err, b) }
	}()
	return true
}

func (a *asyncImage) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	go func() {
		_, err := a.WriteAt(p, off)
		a.completed <- func(b *rbdbackend.Batch) { done.Complete(err, b) }
	}()
	return true
}

const (
	stressSlots     = 64
	stressSlotBytes = 16 << 10
)

// stressWorker drives one initiator (and its successors after a logout
// or a dropped connection) against one LU.
type stressWorker struct {
	t    *testing.T
	e    *testEnv
	lu   stressLU
	rng  *rand.Rand
	isid [6]byte

	in      *iscsitest.Initiator
	tap     *wireTap
	aborted map[uint32][]uint32 // TMF ITT: the tasks it covered
	pending map[uint32]*stressCmd

	// known holds the seed of each slot's content; -1: unknown, -2: never
	// to be checked again (a write of a dropped connection may still land).
	known [stressSlots]int

	cmds, aborts, resets, pings, logouts, drops int
}

type stressCmd struct {
	c     *iscsitest.Cmd
	slot  int // -1: no data (the slow command)
	write bool
	seed  int
}

func (w *stressWorker) connect() error {
	tap, err := dialTap(w.e.addr, 0)
	if err != nil {
		return err
	}
	in := iscsitest.New(tap)
	in.Timeout = 20 * time.Second // generous: a loaded machine under -race
	in.ISID = w.isid
	w.in, w.tap = in, tap
	w.aborted = make(map[uint32][]uint32)
	w.pending = make(map[uint32]*stressCmd)
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	// The new nexus starts with a unit attention.
	for range 3 {
		res, err := in.Do(&iscsitest.Cmd{LUN: w.lu.lun, CDB: cdbTUR()})
		if err != nil {
			return err
		}
		if res.Status == 0 {
			return nil
		}
	}
	return fmt.Errorf("unit attention does not clear")
}

// closeConn ends the connection and checks what the target sent on it.
func (w *stressWorker) closeConn() error { return w.tap.check(w.aborted) }

func (w *stressWorker) submit(sc *stressCmd) error {
	if err := w.in.Submit(sc.c); err != nil {
		return err
	}
	w.pending[sc.c.ITT] = sc
	w.cmds++
	return nil
}

// dataCmd makes a READ or WRITE of one slot.
func (w *stressWorker) dataCmd(slot int) *stressCmd {
	n := (1 + w.rng.IntN(stressSlotBytes/4096)) * 4096
	lba := uint32(slot * stressSlotBytes / testBlockSize)
	blocks := uint16(n / testBlockSize)
	sc := &stressCmd{slot: slot}
	if w.known[slot] == -2 || w.rng.IntN(2) == 0 {
		sc.write = true
		sc.seed = w.rng.IntN(250)
		// A whole slot, so that the slot's content is one seed's.
		n = stressSlotBytes
		blocks = uint16(n / testBlockSize)
		sc.c = &iscsitest.Cmd{LUN: w.lu.lun, CDB: cdbWrite10(lba, blocks), EDTL: uint32(n), Data: pattern(n, byte(sc.seed))}
		if w.known[slot] != -2 {
			w.known[slot] = -1 // until its status says GOOD
		}
		return sc
	}
	sc.c = &iscsitest.Cmd{LUN: w.lu.lun, CDB: cdbRead10(lba, blocks), Read: true, EDTL: uint32(n)}
	return sc
}

func (w *stressWorker) slowCmd() *stressCmd {
	cdb := make([]byte, 10)
	cdb[0] = 0x35 // SYNCHRONIZE CACHE (10)
	return &stressCmd{slot: -1, c: &iscsitest.Cmd{LUN: w.lu.lun, CDB: cdb}}
}

// burst submits up to n data commands on distinct slots (so that their
// order does not matter) and, sometimes, a slow one.
func (w *stressWorker) burst(n int, slow bool) (*stressCmd, error) {
	busy := make(map[int]bool)
	for _, sc := range w.pending {
		if sc.slot >= 0 {
			busy[sc.slot] = true
		}
	}
	var slowCmd *stressCmd
	if slow {
		slowCmd = w.slowCmd()
		if err := w.submit(slowCmd); err != nil {
			return nil, err
		}
	}
	for range n {
		slot := w.rng.IntN(stressSlots)
		if busy[slot] {
			continue
		}
		busy[slot] = true
		if err := w.submit(w.dataCmd(slot)); err != nil {
			return nil, err
		}
	}
	return slowCmd, nil
}

// settle polls until every pending command has its status (aborted ones
// left pending), and checks the data read.
func (w *stressWorker) settle() error {
	for {
		w.reap()
		if len(w.pending) == 0 {
			return nil
		}
		if _, err := w.in.Poll(); err != nil {
			return fmt.Errorf("waiting for %d commands: %w", len(w.pending), err)
		}
	}
}

// reap takes the finished commands out of pending.
func (w *stressWorker) reap() {
	for itt, sc := range w.pending {
		if !sc.c.Done() {
			continue
		}
		delete(w.pending, itt)
		w.finished(sc)
	}
}

func (w *stressWorker) finished(sc *stressCmd) {
	res := sc.c.Result
	if sc.slot < 0 {
		return
	}
	switch {
	case sc.write && res.Status == 0 && w.known[sc.slot] != -2:
		w.known[sc.slot] = sc.seed
	case sc.write:
	case res.Status == 0 && w.known[sc.slot] >= 0:
		want := pattern(stressSlotBytes, byte(w.known[sc.slot]))[:sc.c.EDTL]
		if string(res.Data) != string(want) {
			w.t.Errorf("LUN %d slot %d: read data differs from the last write (seed %d)", w.lu.lun, sc.slot, w.known[sc.slot])
		}
	}
}

// abortCovered notes what a TMF that answered Function Complete aborted.
func (w *stressWorker) abortCovered(tmfITT uint32, itts []uint32) {
	for _, itt := range itts {
		if sc := w.pending[itt]; sc != nil && !sc.c.Done() {
			// It stays silent (checkWire): forget it.
			delete(w.pending, itt)
			if sc.slot >= 0 && sc.write && w.known[sc.slot] != -2 {
				w.known[sc.slot] = -1
			}
		}
	}
	w.aborted[tmfITT] = itts
}

// forgetPending forgets the commands of a connection that is gone; poison:
// their writes may still land, their slots are never checked again.
func (w *stressWorker) forgetPending(poison bool) {
	for itt, sc := range w.pending {
		if poison && sc.write && sc.slot >= 0 && !sc.c.Done() {
			w.known[sc.slot] = -2
		}
		delete(w.pending, itt)
	}
}

func (w *stressWorker) step() error {
	in := w.in
	switch r := w.rng.IntN(100); {
	case r < 40: // pipelined inline reads and writes
		if _, err := w.burst(1+w.rng.IntN(6), false); err != nil {
			return err
		}
		return w.settle()
	case r < 58: // ABORT TASK of a slow command, or of one already done
		slow, err := w.burst(w.rng.IntN(4), true)
		if err != nil {
			return err
		}
		for range w.rng.IntN(3) {
			if _, err := in.Poll(); err != nil {
				return err
			}
		}
		target := slow.c
		if w.rng.IntN(4) == 0 {
			// Any pending command, inline ones included.
			for _, sc := range w.pending {
				target = sc.c
				break
			}
		}
		tmfITT := in.NextITT()
		w.aborts++
		code, err := w.taskMgmtAt(tmfITT, pdu.TMFAbortTask, target.ITT, target.CmdSN)
		if err != nil {
			return err
		}
		switch code {
		case pdu.TMFRespComplete:
			w.abortCovered(tmfITT, []uint32{target.ITT})
		case pdu.TMFRespNoTask:
			if !target.Done() {
				// Its status may still be on its way; it must come.
				return w.settle()
			}
		default:
			return fmt.Errorf("ABORT TASK answered %d", code)
		}
		return w.settle()
	case r < 66: // LU RESET with commands in flight
		if _, err := w.burst(w.rng.IntN(5), w.rng.IntN(2) == 0); err != nil {
			return err
		}
		var covered []uint32
		for itt := range w.pending {
			covered = append(covered, itt)
		}
		tmfITT := in.NextITT()
		w.resets++
		code, err := w.taskMgmtAt(tmfITT, pdu.TMFLogicalUnitReset, iscsitest.ReservedTag, 0)
		if err != nil {
			return err
		}
		if code != pdu.TMFRespComplete {
			return fmt.Errorf("LU RESET answered %d", code)
		}
		w.reap()
		w.abortCovered(tmfITT, covered)
		return w.settle() // the unit attention shows in later statuses
	case r < 80: // NOP-Out pings among commands
		if _, err := w.burst(w.rng.IntN(4), w.rng.IntN(3) == 0); err != nil {
			return err
		}
		itt := in.NextITT()
		imm := w.rng.IntN(2) == 0
		w.pings++
		if err := in.Send((&pdu.NOPOut{
			Immediate: imm, ITT: itt, TTT: iscsitest.ReservedTag,
			CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, Data: pattern(w.rng.IntN(64), 7),
		}).Encode()); err != nil {
			return err
		}
		if !imm {
			in.CmdSN++
		}
		if err := w.settle(); err != nil {
			return err
		}
		for !w.sawNOPIn(itt) {
			if _, err := in.Poll(); err != nil {
				return fmt.Errorf("waiting for the NOP-In: %w", err)
			}
		}
		return nil
	case r < 86: // logout with commands in flight
		if _, err := w.burst(w.rng.IntN(5), w.rng.IntN(2) == 0); err != nil {
			return err
		}
		w.logouts++
		code, err := in.Logout(0)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		if code != pdu.LogoutRespSuccess {
			return fmt.Errorf("logout answered %d", code)
		}
		// Everything was answered before the Logout Response.
		w.reap()
		if len(w.pending) != 0 {
			return fmt.Errorf("%d commands unanswered at logout", len(w.pending))
		}
		if _, err := in.ExpectClosed(); err != nil {
			return err
		}
		if err := w.closeConn(); err != nil {
			return err
		}
		return w.connect()
	case r < 90: // the connection drops with commands in flight; the session is reinstated
		if _, err := w.burst(w.rng.IntN(5), w.rng.IntN(2) == 0); err != nil {
			return err
		}
		for range w.rng.IntN(3) {
			if _, err := in.Poll(); err != nil {
				return err
			}
		}
		w.drops++
		w.reap()
		w.forgetPending(true)
		if err := w.closeConn(); err != nil {
			return err
		}
		return w.connect()
	default: // a lone command
		if _, err := w.burst(1, false); err != nil {
			return err
		}
		return w.settle()
	}
}

// taskMgmtAt sends a TMF with the ITT the caller took (so that it can
// note what the TMF covers) and handles the PDUs ahead of its response.
func (w *stressWorker) taskMgmtAt(itt uint32, fn uint8, refITT, refCmdSN uint32) (uint8, error) {
	in := w.in
	if err := in.Send((&pdu.TaskMgmtReq{
		Immediate: true, Function: fn, LUN: pdu.EncodeLUN(w.lu.lun), ITT: itt, RefTaskTag: refITT,
		CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, RefCmdSN: refCmdSN,
	}).Encode()); err != nil {
		return 0, err
	}
	for {
		if _, err := in.Poll(); err != nil {
			return 0, fmt.Errorf("waiting for the TMF response: %w", err)
		}
		for i, p := range in.Unexpected {
			if p.BHS.Opcode() != pdu.OpTaskMgmtResp || p.BHS.ITT() != itt {
				continue
			}
			in.Unexpected = append(in.Unexpected[:i], in.Unexpected[i+1:]...)
			r, err := pdu.ParseTaskMgmtResp(p)
			if err != nil {
				return 0, err
			}
			return r.Response, nil
		}
	}
}

func (w *stressWorker) sawNOPIn(itt uint32) bool {
	in := w.in
	for i, p := range in.Unexpected {
		if p.BHS.Opcode() == pdu.OpNOPIn && p.BHS.ITT() == itt {
			in.Unexpected = append(in.Unexpected[:i], in.Unexpected[i+1:]...)
			return true
		}
	}
	return false
}

func (w *stressWorker) run(until time.Time) error {
	for i := range w.known {
		w.known[i] = -1
	}
	if err := w.connect(); err != nil {
		return err
	}
	for time.Now().Before(until) {
		if err := w.step(); err != nil {
			return err
		}
		if len(w.in.Unexpected) > 0 {
			p := w.in.Unexpected[0]
			return fmt.Errorf("unexpected %v ITT %#x", p.BHS.Opcode(), p.BHS.ITT())
		}
	}
	if err := w.settle(); err != nil {
		return err
	}
	w.forgetPending(false)
	return w.closeConn()
}

// TestLoopOwnershipStress runs several connections at once through a
// random mix of pipelined inline READs and WRITEs (with R2Ts), slow
// commands, ABORT TASK, LU RESET, NOP-Out pings, target pings, logouts and
// dropped connections with reinstatement, while the LUs' write latency
// flips between fast (inline, on the reader) and stalling (takeovers).
// Half the LUs start their slow READs and WRITEs from the loop
// (asyncImage).
// Every command must get exactly one status, aborted ones none after
// their TMF's answer, StatSN must advance by one per status in wire order
// and the data read must be the data written.
func TestLoopOwnershipStress(t *testing.T) {
	dur := 3 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	e := newEnv(t, withTuning(func(o *Options) {
		o.InlineLatency = 5 * time.Millisecond // the race detector slows the SCSI layer down
		o.NopInInterval = 30 * time.Millisecond
		o.NopInTimeout = 30 * time.Second
	}))
	const workers = 4
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	until := time.Now().Add(dur)
	var lus []stressLU
	for i := range workers {
		lus = append(lus, addStressLU(t, e, uint64(i+1)))
	}
	stop := make(chan struct{})
	var flipWG sync.WaitGroup
	flipWG.Add(1)
	go func() {
		// Writes stall now and then: the inline holder, reader or serve
		// goroutine, is taken over.
		defer flipWG.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		for {
			lu := lus[rng.IntN(len(lus))]
			lu.fault.SetLatency(rbdbackend.OpWrite, 15*time.Millisecond)
			select {
			case <-stop:
				lu.fault.SetLatency(rbdbackend.OpWrite, 0)
				return
			case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
			}
			lu.fault.SetLatency(rbdbackend.OpWrite, 0)
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(20+rng.IntN(100)) * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	ws := make([]*stressWorker, workers)
	for i := range workers {
		w := &stressWorker{
			t: t, e: e, lu: lus[i], rng: rand.New(rand.NewPCG(seed, uint64(i+2))),
			isid: [6]byte{0x80, 0x12, 0x34, 0x56, 0x01, byte(i)},
		}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(until); err != nil {
				t.Errorf("worker %d: %v", i, err)
				if w.tap != nil {
					w.tap.finish()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flipWG.Wait()
	for i, w := range ws {
		t.Logf("worker %d: %d commands, %d aborts, %d LU resets, %d pings, %d logouts, %d drops",
			i, w.cmds, w.aborts, w.resets, w.pings, w.logouts, w.drops)
	}
	t.Logf("%d commands inline, %d started by the loop, %d answered by their completion's goroutine, %d takeovers",
		e.srv.inlineRuns.Load(), e.srv.asyncStarts.Load(), e.srv.directAnswers.Load(), e.srv.loopTakeovers.Load())
	if e.srv.asyncStarts.Load() == 0 {
		t.Error("no command was started by the loop")
	}
	if e.srv.directAnswers.Load() == 0 {
		t.Error("no completion was answered by the goroutine that delivered it")
	}
	waitFor(t, "the connections to end", func() bool { return e.connCount() == 0 })
}

// loginTap logs in to the test target over a wireTap.
func (e *testEnv) loginTap(t *testing.T, rcvBuf int) (*iscsitest.Initiator, *wireTap) {
	t.Helper()
	tap, err := dialTap(e.addr, rcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.finish() })
	in := iscsitest.New(tap)
	in.Timeout = 20 * time.Second
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatalf("login: %v", err)
	}
	clearUnitAttention(t, in)
	return in, tap
}

// warmInline runs enough fast commands that the LU's commands run inline.
func warmInline(t *testing.T, e *testEnv, in *iscsitest.Initiator) {
	t.Helper()
	for i := range 4 * inlineWarmup {
		read10(t, in, uint32(i*8), 4096)
	}
	if e.srv.inlineRuns.Load() == 0 {
		t.Fatal("no command ran inline on a fast LU")
	}
}

// TestLoopGoesOnWhileInitiatorStopsReading has the initiator stop reading
// while 12 MiB of Data-In is on its way, so that the socket fills up under
// whoever holds the loop, the reader answering inline READs or the serve
// goroutine: its write leaves the rest to the writer goroutine, which
// waits; meanwhile a slow command completes and more commands arrive. Once
// the initiator reads again every command has its status, in StatSN
// order, with the right data, and the connection still serves.
func TestLoopGoesOnWhileInitiatorStopsReading(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.InlineLatency = 10 * time.Millisecond }))
	in, tap := e.loginTap(t, 16<<10)
	want := pattern(128<<10, 3)
	for i := range 4 {
		write10(t, in, uint32(i*256), want)
	}
	warmInline(t, e, in)
	e.fault.SetLatency(rbdbackend.OpFlush, 50*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpFlush, 0)
	syncCache := make([]byte, 10)
	syncCache[0] = 0x35
	cmds := []*iscsitest.Cmd{{CDB: syncCache}}
	for i := range 96 {
		cmds = append(cmds, &iscsitest.Cmd{CDB: cdbRead10(uint32(i%4*256), 256), Read: true, EDTL: 128 << 10})
	}
	for i := range 16 {
		cmds = append(cmds, &iscsitest.Cmd{CDB: cdbWrite10(uint32(4096+i*8), 8), EDTL: 4096, Data: pattern(4096, byte(i))})
	}
	for i, c := range cmds {
		if err := in.Submit(c); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if i == 48 {
			time.Sleep(60 * time.Millisecond) // the socket is full by now
		}
	}
	for done := 0; done < len(cmds); {
		c, err := in.Poll()
		if err != nil {
			t.Fatalf("%d of %d commands answered: %v", done, len(cmds), err)
		}
		if c != nil {
			done++
		}
	}
	for i, c := range cmds {
		if c.Result.Status != 0 {
			t.Fatalf("command %d: status %#x", i, c.Result.Status)
		}
		if c.Read && string(c.Result.Data) != string(want) {
			t.Fatalf("command %d: wrong data", i)
		}
	}
	for i := range 16 {
		equalBytes(t, "write", e.imageBytes((4096+i*8)*testBlockSize, 4096), pattern(4096, byte(i)))
	}
	stillServes(t, in)
	t.Logf("%d takeovers", e.srv.loopTakeovers.Load())
	if err := tap.check(nil); err != nil {
		t.Fatal(err)
	}
}

// TestBatchedMixAnsweredInOrder sends, again and again, one write holding
// a slow command, inline READs and a WRITE, a NOP-Out ping, an ABORT TASK
// of the slow command and a non-immediate ping: the reader handles them
// together, the slow command's completion and the TMF's result come from
// other goroutines. Every request is answered once (the aborted command
// not at all after its TMF's answer) and StatSN follows wire order.
func TestBatchedMixAnsweredInOrder(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.InlineLatency = 10 * time.Millisecond }))
	in, tap := e.loginTap(t, 0)
	warmInline(t, e, in)
	e.fault.SetLatency(rbdbackend.OpFlush, 2*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpFlush, 0)
	aborted := make(map[uint32][]uint32)
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	for round := range rounds {
		var batch []*pdu.PDU
		wantStatus := make(map[uint32]bool) // ITT: needs an answer
		cmd := func(c pdu.SCSICommand) (itt, cmdSN uint32) {
			c.ITT, c.CmdSN, c.ExpStatSN = in.NextITT(), in.CmdSN, in.ExpStatSN
			in.CmdSN++
			batch = append(batch, c.Encode())
			wantStatus[c.ITT] = true
			return c.ITT, c.CmdSN
		}
		syncCache := make([]byte, 10)
		syncCache[0] = 0x35
		slowITT, slowCmdSN := cmd(pdu.SCSICommand{Final: true, CDB: syncCache})
		for i := range 3 {
			cmd(pdu.SCSICommand{Final: true, Read: true, CDB: cdbRead10(uint32(i*8), 8), EDTL: 4096})
		}
		data := pattern(4096, byte(round))
		cmd(pdu.SCSICommand{Final: true, Write: true, CDB: cdbWrite10(uint32(1024+round%64*8), 8), EDTL: 4096, Data: data})
		ping := in.NextITT()
		batch = append(batch, (&pdu.NOPOut{Immediate: true, ITT: ping, TTT: iscsitest.ReservedTag, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, Data: []byte("ping")}).Encode())
		wantStatus[ping] = true
		tmf := in.NextITT()
		batch = append(batch, (&pdu.TaskMgmtReq{
			Immediate: true, Function: pdu.TMFAbortTask, ITT: tmf, RefTaskTag: slowITT,
			CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, RefCmdSN: slowCmdSN,
		}).Encode())
		wantStatus[tmf] = true
		ping2 := in.NextITT()
		batch = append(batch, (&pdu.NOPOut{ITT: ping2, TTT: iscsitest.ReservedTag, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN}).Encode())
		in.CmdSN++
		wantStatus[ping2] = true
		if err := in.Send(batch...); err != nil {
			t.Fatal(err)
		}
		for len(wantStatus) > 0 {
			p, err := in.Recv()
			if err != nil {
				t.Fatalf("round %d: %d requests unanswered: %v", round, len(wantStatus), err)
			}
			itt := p.BHS.ITT()
			switch op := p.BHS.Opcode(); op {
			case pdu.OpDataIn:
				if p.BHS[1]&0x01 == 0 {
					continue
				}
			case pdu.OpSCSIResponse, pdu.OpNOPIn:
			case pdu.OpTaskMgmtResp:
				r, err := pdu.ParseTaskMgmtResp(p)
				if err != nil {
					t.Fatal(err)
				}
				switch r.Response {
				case pdu.TMFRespComplete:
					if wantStatus[slowITT] {
						delete(wantStatus, slowITT) // aborted: stays silent
						aborted[tmf] = []uint32{slowITT}
					}
				case pdu.TMFRespNoTask:
				default:
					t.Fatalf("round %d: ABORT TASK answered %d", round, r.Response)
				}
			default:
				t.Fatalf("round %d: unexpected %v", round, op)
			}
			if !wantStatus[itt] {
				t.Fatalf("round %d: %v for ITT %#x, answered already or not asked", round, p.BHS.Opcode(), itt)
			}
			delete(wantStatus, itt)
		}
	}
	stillServes(t, in)
	if err := tap.check(aborted); err != nil {
		t.Fatal(err)
	}
}

// TestReaderFloodDoesNotStarveCompletions floods the connection with
// NOP-Outs that want no answer, so that the reader takes the loop again
// and again, while slow commands complete on their own goroutines: their
// completions still get the loop, and their statuses arrive while the
// flood goes on.
func TestReaderFloodDoesNotStarveCompletions(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpFlush, 5*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpFlush, 0)
	nop := (&pdu.NOPOut{Immediate: true, ITT: iscsitest.ReservedTag, TTT: iscsitest.ReservedTag}).Encode()
	batch := make([]*pdu.PDU, 64)
	for i := range batch {
		batch[i] = nop
	}
	for round := range 5 {
		syncCache := make([]byte, 10)
		syncCache[0] = 0x35
		c := &iscsitest.Cmd{CDB: syncCache}
		if err := in.Submit(c); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		flooded := make(chan bool, 1)
		go func() {
			// Bounded so that a starved completion fails the test rather
			// than hang it.
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					flooded <- false
					return
				default:
				}
				if err := in.Send(batch...); err != nil {
					flooded <- false
					return
				}
			}
			flooded <- true
		}()
		res, err := func() (*iscsitest.Result, error) {
			for !c.Done() {
				if _, err := in.Poll(); err != nil {
					return nil, err
				}
			}
			return c.Result, nil
		}()
		close(stop)
		if <-flooded {
			t.Fatalf("round %d: the slow command's status waited for the flood to end", round)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if res.Status != 0 {
			t.Fatalf("round %d: status %#x", round, res.Status)
		}
	}
	stillServes(t, in)
}
