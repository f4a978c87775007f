package pdu

import "testing"

func TestLUN(t *testing.T) {
	tests := []struct {
		lun uint64
		raw uint64
	}{
		{0, 0x0000000000000000},
		{1, 0x0001000000000000},
		{255, 0x00ff000000000000},
		{256, 0x4100000000000000},
		{300, 0x412c000000000000},
		{16383, 0x7fff000000000000},
		{16384, 0xd200400000000000},
		{0xffffff, 0xd2ffffff00000000},
	}
	for _, tc := range tests {
		if got := EncodeLUN(tc.lun); got != tc.raw {
			t.Errorf("EncodeLUN(%d) = %016x, want %016x", tc.lun, got, tc.raw)
		}
		got, ok := DecodeLUN(tc.raw)
		if !ok || got != tc.lun {
			t.Errorf("DecodeLUN(%016x) = %d, %v; want %d", tc.raw, got, ok, tc.lun)
		}
	}
}

func TestDecodeLUNUnsupported(t *testing.T) {
	for _, raw := range []uint64{
		0x0101000000000000, // peripheral, bus 1
		0x0001000100000000, // second level present
		0x4001000000000001, // flat with trailing bytes
		0x8001000000000000, // logical unit addressing
		0xc000000000000000, // extended, not flat space
		0xd200000000000001, // extended flat with trailing bytes
		0xe200000000000000, // extended, longer length
	} {
		if lun, ok := DecodeLUN(raw); ok {
			t.Errorf("DecodeLUN(%016x) = %d, true; want unsupported", raw, lun)
		}
	}
}
