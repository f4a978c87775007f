package iscsi

import (
	"fmt"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

func TestWriteReadDataPaths(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {
		o.Tuning.MaxRecvDataSegmentLength = 16384
		o.Tuning.FirstBurstLength = 65536
		o.Tuning.MaxBurstLength = 131072
	}))
	for _, tc := range []struct {
		name  string
		keys  []login.KV
		unsol func(size int) int // bytes sent before any R2T
		burst int
	}{
		{"immediate and unsolicited", []login.KV{kv("InitialR2T", "No"), kv("ImmediateData", "Yes")},
			func(n int) int { return min(n, 65536) }, 131072},
		{"immediate then R2T", []login.KV{kv("InitialR2T", "Yes"), kv("ImmediateData", "Yes")},
			func(n int) int { return min(n, 16384) }, 131072},
		{"R2T only", []login.KV{kv("InitialR2T", "Yes"), kv("ImmediateData", "No")},
			func(int) int { return 0 }, 131072},
		{"unsolicited Data-Out only", []login.KV{kv("InitialR2T", "No"), kv("ImmediateData", "No")},
			func(n int) int { return min(n, 65536) }, 131072},
		{"small bursts one R2T at a time", []login.KV{kv("InitialR2T", "Yes"), kv("ImmediateData", "No"),
			kv("MaxBurstLength", "8192"), kv("MaxOutstandingR2T", "1")},
			func(int) int { return 0 }, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login(tc.keys...)
			for i, size := range []int{512, 4096, 16384, 65536 + 512, 300 << 10, 1 << 20} {
				lba := uint32(i * 4096)
				data := pattern(size, byte(i+1))
				res := write10(t, in, lba, data)
				wantR2T := (size - tc.unsol(size) + tc.burst - 1) / tc.burst
				if res.R2Ts != wantR2T {
					t.Errorf("%d bytes: %d R2Ts, want %d", size, res.R2Ts, wantR2T)
				}
				equalBytes(t, fmt.Sprintf("image after %d-byte write", size), e.imageBytes(int(lba)*testBlockSize, size), data)
				got := read10(t, in, lba, size)
				equalBytes(t, fmt.Sprintf("%d-byte read", size), got.Data, data)
				if !got.PhaseCollapsedStatus || got.Overflow || got.Underflow {
					t.Errorf("%d-byte read: collapsed %v O %v U %v", size, got.PhaseCollapsedStatus, got.Overflow, got.Underflow)
				}
			}
		})
	}
}

func TestDataInSegmentation(t *testing.T) {
	e := newEnv(t)
	// The initiator accepts 4 KiB segments and 64 KiB bursts.
	in := e.login(kv("MaxRecvDataSegmentLength", "4096"), kv("MaxBurstLength", "65536"))
	data := pattern(256<<10, 5)
	write10(t, in, 0, data)
	res := read10(t, in, 0, len(data))
	if res.DataInPDUs != len(data)/4096 {
		t.Fatalf("%d Data-In PDUs, want %d", res.DataInPDUs, len(data)/4096)
	}
	equalBytes(t, "read", res.Data, data)
}

func TestResiduals(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	block := testBlockSize
	write10(t, in, 0, pattern(4*block, 0x61))

	for _, tc := range []struct {
		name     string
		blocks   uint16
		edtl     uint32
		wantData int
		over     bool
		under    bool
		residual uint32
	}{
		{"EDTL 0", 1, 0, 0, true, false, uint32(block)},
		{"EDTL larger", 1, 10000, block, false, true, uint32(10000 - block)},
		{"EDTL smaller than a block", 1, 200, 200, true, false, uint32(block - 200)},
		{"two blocks into one", 2, uint32(block), block, true, false, uint32(block)},
		{"exact", 2, uint32(2 * block), 2 * block, false, false, 0},
	} {
		t.Run("read "+tc.name, func(t *testing.T) {
			res, err := in.Do(&iscsitest.Cmd{CDB: cdbRead10(0, tc.blocks), Read: true, EDTL: tc.edtl})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 0 || len(res.Data) != tc.wantData || res.Overflow != tc.over ||
				res.Underflow != tc.under || res.Residual != tc.residual {
				t.Fatalf("status %#x data %d O %v U %v residual %d; want data %d O %v U %v residual %d",
					res.Status, len(res.Data), res.Overflow, res.Underflow, res.Residual,
					tc.wantData, tc.over, tc.under, tc.residual)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		blocks   uint16
		edtl     int
		over     bool
		under    bool
		residual uint32
		written  int // bytes of 'b' that may reach the medium
	}{
		{"EDTL 0", 1, 0, true, false, uint32(block), 0},
		{"EDTL larger", 1, 2 * block, false, true, uint32(block), block},
		{"EDTL smaller", 2, block, true, false, uint32(block), block},
	} {
		t.Run("write "+tc.name, func(t *testing.T) {
			write10(t, in, 100, pattern(4*block, 0x61))
			before := e.imageBytes(100*block, 4*block)
			res, err := in.Do(&iscsitest.Cmd{CDB: cdbWrite10(100, tc.blocks), EDTL: uint32(tc.edtl), Data: pattern(tc.edtl, 0x62)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Overflow != tc.over || res.Underflow != tc.under || res.Residual != tc.residual {
				t.Fatalf("O %v U %v residual %d; want O %v U %v residual %d",
					res.Overflow, res.Underflow, res.Residual, tc.over, tc.under, tc.residual)
			}
			after := e.imageBytes(100*block, 4*block)
			// Nothing beyond what both EDTL and the CDB allow may change.
			equalBytes(t, "data beyond the transfer", after[tc.written:], before[tc.written:])
			if res.Status == 0 {
				equalBytes(t, "data written", after[:tc.written], pattern(tc.edtl, 0x62)[:tc.written])
			}
		})
	}
}

func TestBidirectionalCommandRefused(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	res, err := in.Do(&iscsitest.Cmd{CDB: cdbWrite10(0, 1), Read: true, EDTL: 512, Data: pattern(512, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 0x02 || len(res.Sense) < 14 || res.Sense[2]&0x0f != senseIllegalRequest {
		t.Fatalf("status %#x sense %x, want CHECK CONDITION ILLEGAL REQUEST", res.Status, res.Sense)
	}
	// The session carries on.
	read10(t, in, 0, 512)
}

func TestManyCommandsInFlight(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.QueueDepth = 16 }))
	in := e.login()
	const n = 200
	cmds := make([]*iscsitest.Cmd, 0, n)
	for i := range n {
		c := &iscsitest.Cmd{CDB: cdbWrite10(uint32(i*8), 8), EDTL: 4096, Data: pattern(4096, byte(i))}
		cmds = append(cmds, c)
	}
	next, done := 0, 0
	for done < n {
		for next < n && in.Inflight() < 16 {
			if err := in.Submit(cmds[next]); err != nil {
				t.Fatal(err)
			}
			next++
		}
		c, err := in.Poll()
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			if c.Result.Status != 0 {
				t.Fatalf("status %#x", c.Result.Status)
			}
			done++
		}
	}
	for i := range n {
		equalBytes(t, "image", e.imageBytes(i*4096, 4096), pattern(4096, byte(i)))
	}
}
