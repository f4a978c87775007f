package iscsi

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Initiators that send commands and then neither their data nor read the
// answers (issue 11, item 5): the gateway's memory stays within its
// buffer budgets, and the initiator waits instead.

// heapInuse is the heap in use after the garbage collector emptied the
// buffer pools (two cycles: pools keep a victim cache for one).
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// header sends a SCSI Command without any data and takes its CmdSN.
func header(t testing.TB, in *iscsitest.Initiator, cdb []byte, edtl uint32, write bool) {
	t.Helper()
	cmd := &pdu.SCSICommand{Final: true, Read: !write, Write: write, LUN: pdu.EncodeLUN(0), ITT: in.NextITT(),
		EDTL: edtl, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, CDB: cdb}
	in.CmdSN++
	if err := in.Send(cmd.Encode()); err != nil {
		t.Fatal(err)
	}
}

// settle waits until the gateway's charged buffers stop changing.
func settle(t testing.TB, srv *Server) int64 {
	t.Helper()
	last, since := int64(-1), time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if u := srv.budget.used.Load(); u != last {
			last, since = u, time.Now()
		} else if time.Since(since) > 500*time.Millisecond {
			return u
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the gateway's buffers do not settle")
	return 0
}

const (
	hostileWriteBlocks = 16384 // 8 MiB: the logical unit's maximum transfer
	hostileReadBlocks  = 2048  // 1 MiB
	heapBudget         = 64 << 20
)

// sendHostile sends writes WRITE(10) headers of 8 MiB without data and
// reads READ(10)s of 1 MiB, interleaved, and never reads an answer.
func sendHostile(t testing.TB, in *iscsitest.Initiator, writes, reads int) {
	t.Helper()
	for i := 0; i < max(writes, reads); i++ {
		if i < writes {
			lba := uint32(i%(testDiskSize/testBlockSize/hostileWriteBlocks)) * hostileWriteBlocks
			header(t, in, cdbWrite10(lba, hostileWriteBlocks), hostileWriteBlocks*testBlockSize, true)
		}
		if i < reads {
			header(t, in, cdbRead10(0, hostileReadBlocks), hostileReadBlocks*testBlockSize, false)
		}
	}
}

// One connection, default budgets: 1000 WRITE headers without data and
// 1000 READs never read back. Unbounded, that would pin 8 GiB of write
// buffers and 1 GiB of Data-In.
func TestHostileCommandsOneConnection(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.QueueDepth = 4096 }))
	honest := e.login()
	hostile := e.dial()
	hostile.ISID[5] = 7
	if err := hostile.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	clearUnitAttention(t, hostile)
	idle := heapInuse()

	sendHostile(t, hostile, 1000, 1000)
	charged := settle(t, e.srv)
	grown := int64(heapInuse()) - int64(idle)
	t.Logf("1000 WRITE headers (8 MiB) + 1000 READs (1 MiB) unread on one connection: heap %+.1f MiB above idle, buffers charged %.1f MiB (connection budget %d MiB)",
		float64(grown)/(1<<20), float64(charged)/(1<<20), e.srv.cfg.connBuffer>>20)
	if grown > heapBudget {
		t.Errorf("heap grew %d MiB, more than %d MiB", grown>>20, heapBudget>>20)
	}
	if charged > e.srv.cfg.connBuffer+8<<20 {
		t.Errorf("%d MiB charged, beyond the connection's budget and one grant", charged>>20)
	}

	// Another initiator is not held up.
	data := pattern(64<<10, 9)
	write10(t, honest, 1000, data)
	equalBytes(t, "honest read", read10(t, honest, 1000, len(data)).Data, data)

	hostile.Close()
	waitFor(t, "the hostile connection's buffers back", func() bool { return e.srv.budget.used.Load() == 0 })
}

// Many connections share the gateway's budget: 20 connections send 50
// WRITE headers and 50 unread READs each. A connection starved by the
// others proceeds once they are gone.
func TestHostileCommandsManyConnections(t *testing.T) {
	const conns, each = 20, 50
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.GatewayBufferMiB = 32 }))
	honest := e.login()
	var hostile []*iscsitest.Initiator
	for i := range conns {
		in := e.dial()
		in.ISID[5] = byte(10 + i)
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
			t.Fatal(err)
		}
		clearUnitAttention(t, in)
		hostile = append(hostile, in)
	}
	idle := heapInuse()
	for _, in := range hostile {
		sendHostile(t, in, each, each)
	}
	charged := settle(t, e.srv)
	grown := int64(heapInuse()) - int64(idle)
	t.Logf("%d connections x (%d WRITE headers + %d READs unread): heap %+.1f MiB above idle, buffers charged %.1f MiB (gateway budget %d MiB, hard limit %d MiB)",
		conns, each, each, float64(grown)/(1<<20), float64(charged)/(1<<20), e.srv.budget.limit>>20, e.srv.budget.hard>>20)
	if grown > heapBudget {
		t.Errorf("heap grew %d MiB, more than %d MiB", grown>>20, heapBudget>>20)
	}
	if charged > e.srv.budget.hard {
		t.Errorf("%d MiB charged, beyond the hard limit %d MiB", charged>>20, e.srv.budget.hard>>20)
	}

	// The honest initiator's READ may wait for buffers; it completes
	// once the hostile connections are gone.
	res := &iscsitest.Cmd{CDB: cdbRead10(0, 128), Read: true, EDTL: 128 * testBlockSize}
	if err := honest.Submit(res); err != nil {
		t.Fatal(err)
	}
	for _, in := range hostile {
		in.Close()
	}
	for !res.Done() {
		if _, err := honest.Poll(); err != nil {
			t.Fatalf("honest READ: %v", err)
		}
	}
	if res.Result.Status != 0 {
		t.Fatalf("honest READ: status %#x", res.Result.Status)
	}
	waitFor(t, "every buffer back", func() bool { return e.srv.budget.used.Load() == 0 })
}

// A WRITE beyond the logical unit's maximum transfer length is refused
// (INVALID FIELD IN CDB) without a buffer and without an R2T.
func TestWriteBeyondMaxTransfer(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	const blocks = 2 * hostileWriteBlocks // 16 MiB, twice the maximum
	header(t, in, cdbWrite10(0, blocks), blocks*testBlockSize, true)
	p, err := in.RecvOpcode(pdu.OpSCSIResponse)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pdu.ParseSCSIResponse(p)
	if err != nil {
		t.Fatal(err)
	}
	res := &iscsitest.Result{Status: r.Status, Sense: r.Sense}
	if k, asc, ascq := senseOf(t, res); k != 0x05 || asc != 0x24 || ascq != 0 {
		t.Errorf("sense %#x %#x/%#x, want ILLEGAL REQUEST, INVALID FIELD IN CDB", k, asc, ascq)
	}
	for _, u := range in.Unexpected {
		if u.BHS.Opcode() == pdu.OpR2T {
			t.Error("an R2T solicited the data of a refused command")
		}
	}
	if used := e.srv.budget.used.Load(); used != 0 {
		t.Errorf("%d bytes charged for a refused command", used)
	}
	// A READ of the same size too, and nothing is lent for it.
	res2, err := in.Do(&iscsitest.Cmd{CDB: cdbRead10(0, blocks), Read: true, EDTL: blocks * testBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	if k, asc, _ := senseOf(t, res2); k != 0x05 || asc != 0x24 {
		t.Errorf("READ: sense %#x %#x", k, asc)
	}
}

// A command whose Data-Out does not come is aborted after the Data-Out
// timeout and its connection dropped; the buffer goes back.
func TestDataOutTimeout(t *testing.T) {
	for _, tc := range []struct {
		name        string
		unsolicited bool // announce unsolicited data (F=0) instead of waiting for an R2T
	}{{"after an R2T", false}, {"announced unsolicited data", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withTuning(func(o *Options) { o.DataOutTimeout = 300 * time.Millisecond }))
			in := e.login(kv("InitialR2T", "No"))
			cmd := &pdu.SCSICommand{Final: !tc.unsolicited, Write: true, LUN: pdu.EncodeLUN(0), ITT: in.NextITT(),
				EDTL: 1 << 20, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, CDB: cdbWrite10(0, 2048)}
			in.CmdSN++
			start := time.Now()
			if err := in.Send(cmd.Encode()); err != nil {
				t.Fatal(err)
			}
			got, err := in.ExpectClosed()
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if took < 300*time.Millisecond || took > 3*time.Second {
				t.Errorf("connection dropped after %v, timeout 300ms", took)
			}
			r2ts := 0
			for _, p := range got {
				if p.BHS.Opcode() == pdu.OpR2T {
					r2ts++
				}
			}
			if tc.unsolicited == (r2ts > 0) {
				t.Errorf("%d R2Ts", r2ts)
			}
			if !e.logs.contains("Data-Out timeout") {
				t.Error("no log line")
			}
			waitFor(t, "buffers back", func() bool { return e.srv.budget.used.Load() == 0 })
		})
	}
}

// A connection whose budget is spent holds MaxCmdSN; once the buffers
// come back, a NOP-In (both tags reserved) carries the new MaxCmdSN.
func TestBudgetWindowUpdate(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {
		o.Tuning.ConnectionBufferMiB = 1
		o.Tuning.QueueDepth = 4
	}))
	in := e.login()
	first := in.CmdSN
	header(t, in, cdbRead10(0, hostileReadBlocks), hostileReadBlocks*testBlockSize, false)
	var maxSeen uint32
	update := false
	deadline := time.Now().Add(5 * time.Second)
	for !update && time.Now().Before(deadline) {
		p, err := in.Recv()
		if err != nil {
			t.Fatal(err)
		}
		op := p.BHS.Opcode()
		if op == pdu.OpDataIn || op == pdu.OpNOPIn || op == pdu.OpSCSIResponse {
			if m := binary.BigEndian.Uint32(p.BHS[32:36]); snLess(maxSeen, m) || maxSeen == 0 {
				maxSeen = m
			}
		}
		if op == pdu.OpNOPIn && p.BHS.ITT() == reservedTag && binary.BigEndian.Uint32(p.BHS[20:24]) == reservedTag {
			update = true
		}
	}
	if !update {
		t.Fatal("no NOP-In window update after the READ's buffer came back")
	}
	if want := first + 4; maxSeen != want {
		t.Errorf("MaxCmdSN %d after one READ, want %d", maxSeen, want)
	}
}

// Immediate task management functions are bounded per connection: beyond
// maxTMFs in progress they are answered "function rejected" at once.
func TestTMFBound(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	// A write, unlike a read, is not abandoned when aborted: the TMFs
	// wait for it.
	e.fault.SetLatency(rbdbackend.OpWrite, time.Second)
	slow := &iscsitest.Cmd{CDB: cdbWrite10(0, 8), EDTL: 8 * testBlockSize, Data: pattern(8*testBlockSize, 1)}
	if err := in.Submit(slow); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the READ is running
	const sent = 3 * maxTMFs
	for range sent {
		if err := in.Send((&pdu.TaskMgmtReq{Immediate: true, Function: pdu.TMFAbortTaskSet, LUN: pdu.EncodeLUN(0),
			ITT: in.NextITT(), RefTaskTag: iscsitest.ReservedTag, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN}).Encode()); err != nil {
			t.Fatal(err)
		}
	}
	rejected, complete := 0, 0
	for rejected+complete < sent {
		p, err := in.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if p.BHS.Opcode() != pdu.OpTaskMgmtResp {
			continue
		}
		switch p.BHS[2] {
		case pdu.TMFRespRejected:
			rejected++
		case pdu.TMFRespComplete:
			complete++
		}
	}
	if complete > maxTMFs || rejected < sent-maxTMFs {
		t.Errorf("%d complete, %d rejected of %d; at most %d in progress", complete, rejected, sent, maxTMFs)
	}
	e.fault.SetLatency(rbdbackend.OpWrite, 0)
}
