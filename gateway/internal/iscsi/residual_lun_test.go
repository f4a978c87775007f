package iscsi

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// TestWriteResidualsPerLUBlockSize checks that the Data-Out residual of a
// WRITE follows the block size of the LU it addresses when the LUs of one
// target differ: LUN 0 has 512-byte blocks, LUN 1 4096-byte blocks.
func TestWriteResidualsPerLUBlockSize(t *testing.T) {
	e := newEnv(t)
	const bigBlock = 4096
	img4k := rbdbackend.NewMemoryImage(4 << 20)
	lu, err := scsi.NewLU(img4k, scsi.LUConfig{Name: "disk4k", BlockSize: bigBlock, Logger: slog.New(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	e.device.SetLU(1, lu)
	in := e.login()
	clearUnitAttentionLUN(t, in, 1)

	for _, tc := range []struct {
		name     string
		lun      uint64
		blocks   uint16
		edtl     int
		over     bool
		under    bool
		residual uint32
		written  int // bytes of the pattern that may reach the medium
	}{
		{"512 exact", 0, 1, testBlockSize, false, false, 0, testBlockSize},
		{"512 EDTL larger", 0, 1, 2 * testBlockSize, false, true, testBlockSize, testBlockSize},
		{"4096 exact", 1, 1, bigBlock, false, false, 0, bigBlock},
		{"4096 EDTL one small block", 1, 1, testBlockSize, true, false, bigBlock - testBlockSize, testBlockSize},
		{"4096 EDTL larger", 1, 1, 2 * bigBlock, false, true, bigBlock, bigBlock},
		{"4096 two blocks into one", 1, 2, bigBlock, true, false, bigBlock, bigBlock},
		{"4096 EDTL 0", 1, 1, 0, true, false, bigBlock, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, block := rbdbackend.Image(e.img), testBlockSize
			if tc.lun == 1 {
				img, block = img4k, bigBlock
			}
			const lba = 8
			seed := pattern(4*block, 0x71)
			if res, err := in.Do(&iscsitest.Cmd{LUN: tc.lun, CDB: cdbWrite10(lba, 4), EDTL: uint32(len(seed)), Data: seed}); err != nil || res.Status != 0 {
				t.Fatalf("seed write: %v %+v", err, res)
			}
			data := pattern(tc.edtl, 0x72)
			res, err := in.Do(&iscsitest.Cmd{LUN: tc.lun, CDB: cdbWrite10(lba, tc.blocks), EDTL: uint32(tc.edtl), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if res.Overflow != tc.over || res.Underflow != tc.under || res.Residual != tc.residual {
				t.Fatalf("O %v U %v residual %d; want O %v U %v residual %d",
					res.Overflow, res.Underflow, res.Residual, tc.over, tc.under, tc.residual)
			}
			after := make([]byte, 4*block)
			if _, err := img.ReadAt(after, lba*int64(block)); err != nil {
				t.Fatal(err)
			}
			equalBytes(t, "data beyond the transfer", after[tc.written:], seed[tc.written:])
			if res.Status == 0 && !bytes.Equal(after[:tc.written], data[:tc.written]) {
				t.Fatal("data written differs")
			}
		})
	}
}

// clearUnitAttentionLUN consumes the POWER ON unit attention of lun.
func clearUnitAttentionLUN(t testing.TB, in *iscsitest.Initiator, lun uint64) {
	t.Helper()
	for range 3 {
		res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: cdbTUR()})
		if err != nil {
			t.Fatalf("TEST UNIT READY: %v", err)
		}
		if res.Status == 0 {
			return
		}
	}
	t.Fatalf("unit attention on LUN %d does not clear", lun)
}
