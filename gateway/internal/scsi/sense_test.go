package scsi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestSenseEncoding(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        *senseError
		descriptor bool
		want       []byte
	}{
		{"fixed, no info", newSense(senseNotReady, ascNotReadyTransition), false,
			[]byte{0x70, 0, 0x02, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x04, 0x0a, 0, 0, 0, 0}},
		{"fixed, information", miscompareAt(0x1234), false,
			[]byte{0xf0, 0, 0x0e, 0, 0, 0x12, 0x34, 10, 0, 0, 0, 0, 0x1d, 0, 0, 0, 0, 0}},
		{"fixed, field pointer with bit", invalidCDB(1, 4), false,
			[]byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xcc, 0, 1}},
		{"fixed, parameter list pointer", invalidParam(300, -1), false,
			[]byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x26, 0, 0, 0x80, 0x01, 0x2c}},
		{"descriptor, none", newSense(senseUnitAttention, ascPowerOnReset), true,
			[]byte{0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0}},
		{"descriptor, information and pointer", func() *senseError {
			e := invalidCDB(2, -1)
			return e.withInfo(1 << 40)
		}(), true,
			[]byte{0x72, 0x05, 0x24, 0, 0, 0, 0, 20,
				0x00, 0x0a, 0x80, 0, 0, 0, 0x01, 0, 0, 0, 0, 0,
				0x02, 0x06, 0, 0, 0xc0, 0, 2, 0}},
		{"fixed, information too large", newSense(senseMiscompare, ascMiscompareDuringVerify).withInfo(1 << 40), false,
			[]byte{0x70, 0, 0x0e, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x1d, 0, 0, 0, 0, 0}},
	} {
		if got := c.err.encode(c.descriptor); !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n got % x\nwant % x", c.name, got, c.want)
		}
	}
}

func TestSenseFromBackend(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind ioKind
		key  byte
		code asc
	}{
		{fmt.Errorf("x: %w", rbdbackend.ErrOutOfRange), ioRead, senseIllegalRequest, ascLBAOutOfRange},
		{rbdbackend.ErrTimeout, ioWrite, senseNotReady, ascNotReadyBecomingReady},
		{rbdbackend.ErrLockLost, ioWrite, senseNotReady, ascNotReadyTransition},
		{rbdbackend.ErrReadOnly, ioWrite, senseDataProtect, ascWriteProtected},
		{rbdbackend.ErrMiscompare, ioWrite, senseMiscompare, ascMiscompareDuringVerify},
		{rbdbackend.ErrClosed, ioRead, senseIllegalRequest, ascLUNotSupported},
		{rbdbackend.ErrUnsupported, ioWrite, senseIllegalRequest, ascInvalidOpcode},
		{errors.New("EIO"), ioRead, senseMediumError, ascUnrecoveredReadError},
		{errors.New("EIO"), ioWrite, senseMediumError, ascWriteError},
	} {
		got := senseFromBackend(c.err, c.kind)
		if got.key != c.key || got.code != c.code {
			t.Errorf("%v: %#x/%04x, want %#x/%04x", c.err, got.key, got.code, c.key, c.code)
		}
	}
	if senseFromBackend(nil, ioRead) != nil {
		t.Error("nil error mapped to sense")
	}
}

func TestDataOutLength(t *testing.T) {
	e := newEnv(t)
	ws := ws16(0x01, 0, 8)
	verify3 := cdb10(opVerify10, 0, 4)
	verify3[1] = 0x06
	for _, c := range []struct {
		cdb  []byte
		n    int
		okay bool
	}{
		{cdb10(opWrite10, 0, 4), 4 * testBlockSize, true},
		{cdb10(opRead10, 0, 4), 0, true},
		{[]byte{opWrite6, 0, 0, 0, 0, 0}, 256 * testBlockSize, true},
		{cawCDB(0, 1), 2 * testBlockSize, true},
		{ws16(0, 0, 8), testBlockSize, true},
		{ws, 0, true},
		{verify3, testBlockSize, true},
		{cdb10(opVerify10, 0, 4), 0, true},
		{cdbUnmap(40), 40, true},
		{[]byte{opModeSelect6, 0x10, 0, 0, 28, 0}, 28, true},
		{xcopyCDB(76), 76, true},
		{prOutCDB(0, 0), 24, true},
		{[]byte{0xff, 0, 0, 0, 0, 0}, 0, false},
	} {
		n, ok := e.tgt.DataOutLength(c.cdb)
		if n != c.n || ok != c.okay {
			t.Errorf("CDB % x: %d %v, want %d %v", c.cdb, n, ok, c.n, c.okay)
		}
	}
	lu4k, err := NewLU(memImage(testBlocks), LUConfig{Name: "4k", BlockSize: 4096, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer lu4k.Close()
	e.tgt.SetLU(1, lu4k)
	if _, ok := e.tgt.DataOutLength(cdb10(opWrite10, 0, 1)); ok {
		t.Error("mixed block sizes: DataOutLength must not guess")
	}
	if n, ok := e.tgt.DataOutLengthLUN(e.n, 1, cdb10(opWrite10, 0, 1)); !ok || n != 4096 {
		t.Errorf("DataOutLengthLUN: %d %v", n, ok)
	}
}

func TestNewLUValidation(t *testing.T) {
	img := memImage(16)
	for _, c := range []LUConfig{
		{BlockSize: 1000},
		{BlockSize: 256},
		{WWN: "xyz"},
		{WWN: "0123"},
		{Serial: "bad\x01serial"},
		{Revision: "12345"},
		{CompanyID: 1 << 24},
		{BlockSize: 4096, PhysicalBlockSize: 512},
		{BlockSize: 512, PhysicalBlockSize: 3072},
		{BlockSize: 512, PhysicalBlockSize: 512 << 16},
	} {
		if _, err := NewLU(img, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewLU(nil, LUConfig{}); err == nil {
		t.Error("nil image accepted")
	}
	a, _ := NewLU(img, LUConfig{Name: "same"})
	b, _ := NewLU(img, LUConfig{Name: "same"})
	c, _ := NewLU(img, LUConfig{Name: "other"})
	defer a.Close()
	defer b.Close()
	defer c.Close()
	if a.WWN() != b.WWN() || a.WWN() == c.WWN() || len(a.WWN()) != 16 {
		t.Errorf("derived WWNs %s %s %s", a.WWN(), b.WWN(), c.WWN())
	}
}

// A closed logical unit answers like a LUN without one.
func TestClosedLU(t *testing.T) {
	e := newEnv(t)
	e.lu.Close()
	r := e.tgt.Execute(context.Background(), &Command{Nexus: e.n, CDB: cdb10(opRead10, 0, 1)})
	if _, c := senseCode(t, r); c != ascLUNotSupported {
		t.Errorf("closed LU: %04x", c)
	}
}
