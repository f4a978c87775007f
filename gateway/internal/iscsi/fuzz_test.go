package iscsi

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// fuzzSeeds are PDU streams a logged-in initiator could send (CmdSN starts
// at 0 after an iscsitest login).
func fuzzSeeds() [][]byte {
	enc := func(ps ...*pdu.PDU) []byte {
		var buf bytes.Buffer
		if err := pdu.NewWriter(&buf).WriteBatch(ps); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
	data := pattern(1024, 1)
	return [][]byte{
		enc((&pdu.SCSICommand{Final: true, ITT: 1, CDB: cdbTUR()}).Encode()),
		enc((&pdu.SCSICommand{Final: true, Read: true, ITT: 2, EDTL: 4096, CDB: cdbRead10(0, 8)}).Encode()),
		enc((&pdu.SCSICommand{Final: false, Write: true, ITT: 3, EDTL: 1024, CDB: cdbWrite10(0, 2), Data: data[:512]}).Encode(),
			(&pdu.DataOut{Final: true, ITT: 3, TTT: iscsitest.ReservedTag, BufferOffset: 512, Data: data[512:]}).Encode()),
		enc((&pdu.SCSICommand{Final: true, Write: true, ITT: 4, EDTL: 1024, CDB: cdbWrite10(0, 2)}).Encode(),
			(&pdu.DataOut{Final: true, ITT: 4, TTT: 1, Data: data}).Encode()),
		enc((&pdu.NOPOut{Immediate: true, ITT: 5, TTT: iscsitest.ReservedTag, Data: []byte("ping")}).Encode(),
			(&pdu.TextReq{Immediate: true, Final: true, ITT: 6, TTT: iscsitest.ReservedTag,
				Data: login.EncodeText([]login.KV{kv("SendTargets", "All")})}).Encode()),
		enc((&pdu.TaskMgmtReq{Immediate: true, Function: pdu.TMFAbortTask, ITT: 7, RefTaskTag: 3}).Encode(),
			(&pdu.TaskMgmtReq{Immediate: true, Function: pdu.TMFLogicalUnitReset, ITT: 8}).Encode()),
		enc((&pdu.SNACKReq{Type: 1, ITT: 9}).Encode(), (&pdu.LogoutReq{Immediate: true, ITT: 10}).Encode()),
		enc((&pdu.SCSICommand{Final: true, ITT: 11, CmdSN: 5, CDB: cdbTUR()}).Encode(),
			(&pdu.SCSICommand{Final: true, ITT: 12, CmdSN: 0, CDB: cdbTUR()}).Encode()),
		rawBHS(0x1f, 0),
	}
}

// FuzzConnection feeds arbitrary bytes to a logged-in connection. The
// target must never panic and must always finish cleaning the connection
// up once the initiator goes away.
func FuzzConnection(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	e := newEnv(f, withTuning(func(o *Options) { o.LogoutGrace = 100 * time.Millisecond }))
	f.Fuzz(func(t *testing.T, stream []byte) {
		in, err := iscsitest.Dial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, in.Conn)
		}()
		_ = in.SendRaw(stream)
		_ = in.Conn.(interface{ CloseWrite() error }).CloseWrite()
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			t.Fatal("target did not close the connection after the initiator left")
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.connCount() != 0 || e.sessionCount() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("connection cleanup stuck: %d connections, %d sessions", e.connCount(), e.sessionCount())
			}
			time.Sleep(time.Millisecond)
		}
		if n := e.logs.panicCount(); n > 0 {
			t.Fatalf("%d panics recovered", n)
		}
	})
}
