package iscsi

import (
	"fmt"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
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
	// The memory image itself, as a memory LUN of the daemon has it, not
	// behind the tests' fault injector.
	lu, err := scsi.NewLU(e.img, scsi.LUConfig{Name: "disk1", BlockSize: testBlockSize})
	if err != nil {
		b.Fatal(err)
	}
	e.device.SetLU(0, lu)
	in := e.login()
	blocks := size / testBlockSize
	slots := testDiskSize / size
	free := make([]*iscsitest.Cmd, 0, depth)
	for i := range depth {
		c := &iscsitest.Cmd{EDTL: uint32(size)}
		if write {
			c.Data = pattern(size, byte(i))
		} else {
			c.Read = true
			c.ReadBuf = make([]byte, size)
		}
		free = append(free, c)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	issued, done := 0, 0
	for done < b.N {
		for issued < b.N && len(free) > 0 {
			c := free[len(free)-1]
			free = free[:len(free)-1]
			lba := uint32((issued % slots) * blocks)
			if write {
				c.CDB = cdbWrite10(lba, uint16(blocks))
			} else {
				c.CDB = cdbRead10(lba, uint16(blocks))
			}
			if err := in.Submit(c); err != nil {
				b.Fatal(err)
			}
			issued++
		}
		c, err := in.Poll()
		if err != nil {
			b.Fatal(err)
		}
		if c != nil {
			if c.Result.Status != 0 {
				b.Fatalf("status %#x", c.Result.Status)
			}
			done++
			free = append(free, c)
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
