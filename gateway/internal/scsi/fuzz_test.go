package scsi

import (
	"context"
	"testing"
)

// FuzzExecute feeds random CDBs and Data-Out to the device server: it must
// never panic, and every status must be well formed (CHECK CONDITION with
// valid sense data, the others without).
func FuzzExecute(f *testing.F) {
	for _, e := range opList {
		cdb := make([]byte, e.cdbLen)
		cdb[0] = e.opcode
		if e.hasSA {
			cdb[saFieldByte(e.opcode)] = byte(e.sa)
		}
		f.Add(cdb, []byte{}, uint8(0), uint8(TaskSimple))
		cdb2 := append([]byte(nil), cdb...)
		for i := 1; i < len(cdb2)-1; i++ {
			cdb2[i] = e.usage[i] & 0x5a
		}
		f.Add(cdb2, make([]byte, 1024), uint8(0), uint8(TaskOrdered))
	}
	f.Add([]byte{opModeSelect6, 0x10, 0, 0, 16, 0}, []byte{0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10, 0x08, 0x40, 0, 0, 0xff, 0xff, 0, 0}, uint8(0), uint8(1))
	f.Add([]byte{opRequestSense, 1, 0, 0, 255, 0}, []byte{}, uint8(3), uint8(0))

	e := newEnvWithImage(f, memImage(64), func(c *LUConfig) { c.Limits.MaxTransferBytes = 64 << 10 })
	var tag uint32
	f.Fuzz(func(t *testing.T, cdb, data []byte, lun uint8, attr uint8) {
		if len(cdb) > 260 || len(data) > 1<<16 {
			return
		}
		tag++
		cmd := &Command{Nexus: e.n, LUN: uint64(lun % 2), CDB: cdb, Attr: TaskAttr(attr % 5), Tag: tag,
			DataOut: data, ExpectedLength: uint32(len(data))}
		r := e.tgt.Execute(context.Background(), cmd)
		switch r.Status {
		case StatusCheckCondition:
			p := parseSense(t, r.Sense)
			if p.key == senseNoSense {
				t.Fatalf("CHECK CONDITION with NO SENSE: % x", r.Sense)
			}
			if p.key == senseHardwareError {
				t.Fatalf("CDB % x: internal failure (a panic or a handler bug)", cdb)
			}
		case StatusGood, StatusConditionMet, StatusReservationConflict:
			if len(r.Sense) != 0 {
				t.Fatalf("status %#x with sense data", r.Status)
			}
		default:
			t.Fatalf("unexpected result %+v", r)
		}
		if r.Aborted {
			t.Fatalf("command aborted without task management")
		}
	})
}
