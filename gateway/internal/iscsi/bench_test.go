package iscsi

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// BenchmarkIO measures the target end to end: an in-process initiator on a
// loopback TCP connection keeps 16 commands in flight against a memory
// image.
func BenchmarkIO(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, write := range []bool{false, true} {
			op := "read"
			if write {
				op = "write"
			}
			b.Run(fmt.Sprintf("%s-%dKiB-QD16", op, size>>10), func(b *testing.B) {
				benchIO(b, size, write, 16)
			})
		}
	}
}

func benchIO(b *testing.B, size int, write bool, depth int, opts ...envOption) {
	e := newEnv(b, opts...)
	d := newIODriver(b, e, size, write, depth, testDiskSize/size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	d.run(b.N)
}

// ioDriver keeps depth commands of one size in flight against the memory
// image itself, as a memory LUN of the daemon has it (not behind the
// tests' fault injector), cycling over slots consecutive LBA ranges.
type ioDriver struct {
	tb     testing.TB
	in     *iscsitest.Initiator
	write  bool
	blocks int
	slots  int
	next   int // the slot the next command goes to
	free   []*iscsitest.Cmd
}

func newIODriver(tb testing.TB, e *testEnv, size int, write bool, depth, slots int) *ioDriver {
	tb.Helper()
	return newIODriverOn(tb, e, e.img, size, write, depth, slots)
}

// newIODriverOn is newIODriver against img instead of the memory image.
func newIODriverOn(tb testing.TB, e *testEnv, img rbdbackend.Image, size int, write bool, depth, slots int) *ioDriver {
	tb.Helper()
	lu, err := scsi.NewLU(img, scsi.LUConfig{Name: "disk1", BlockSize: testBlockSize})
	if err != nil {
		tb.Fatal(err)
	}
	e.device.SetLU(0, lu)
	d := &ioDriver{tb: tb, in: e.login(), write: write, blocks: size / testBlockSize, slots: slots}
	for i := range depth {
		c := &iscsitest.Cmd{EDTL: uint32(size), CDB: make([]byte, 10), ReuseResult: true}
		if write {
			c.Data = pattern(size, byte(i))
		} else {
			c.Read = true
			c.ReadBuf = make([]byte, size)
		}
		d.free = append(d.free, c)
	}
	return d
}

// run issues n commands and waits for them all.
func (d *ioDriver) run(n int) {
	issued, done := 0, 0
	for done < n {
		for issued < n && len(d.free) > 0 {
			c := d.free[len(d.free)-1]
			d.free = d.free[:len(d.free)-1]
			lba := uint32(d.next * d.blocks)
			d.next = (d.next + 1) % d.slots
			// The CDB is rewritten in place: the initiator's allocations
			// are not what the benchmark measures.
			op := byte(0x28) // READ (10)
			if d.write {
				op = 0x2a // WRITE (10)
			}
			clear(c.CDB)
			c.CDB[0] = op
			binary.BigEndian.PutUint32(c.CDB[2:], lba)
			binary.BigEndian.PutUint16(c.CDB[7:], uint16(d.blocks))
			if err := d.in.Submit(c); err != nil {
				d.tb.Fatal(err)
			}
			issued++
		}
		c, err := d.in.Poll()
		if err != nil {
			d.tb.Fatal(err)
		}
		if c != nil {
			if c.Result.Status != 0 {
				d.tb.Fatalf("status %#x", c.Result.Status)
			}
			done++
			d.free = append(d.free, c)
		}
	}
}

// BenchmarkNOPRoundTrip is the transport's floor: one NOP-Out/NOP-In
// exchange through the reader, serve loop and writer goroutines.
func BenchmarkNOPRoundTrip(b *testing.B) {
	e := newEnv(b)
	in := e.login()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := in.Ping(nil); err != nil {
			b.Fatal(err)
		}
	}
}
