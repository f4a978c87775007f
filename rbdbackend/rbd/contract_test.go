//go:build pacific

package rbd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// The rbdbackend.Image contract, run against librbd images. It follows
// the behaviour every implementation shares, with two documented rbd
// differences: allocation is reported per RADOS object, and a
// compare-and-write that librbd cannot do atomically needs the exclusive
// lock (taken here by the factory, as the owning gateway would).

// contractObject is the object size of contract images: small objects
// make object boundaries and object-granular extents easy to hit.
const contractObject = 64 << 10

// contractSize is not a multiple of the object size, so the last object
// is partial.
const contractSize = 5<<20 + 3*4096

const mib = 1 << 20

func contractImage(t *testing.T) *Image {
	c := sharedCluster(t)
	img := newImage(t, c, contractSize, CreateOptions{ObjectSize: contractObject})
	if err := img.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	return img
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// sharedCluster is one client for the tests that need only one, as in a
// gateway process. It is never closed: the process ends after the tests.
func sharedCluster(t testing.TB) *Cluster {
	cfg := testConfig(t)
	sharedOnce.Do(func() { shared, sharedErr = Connect(cfg) })
	if sharedErr != nil {
		t.Fatalf("Connect: %v", sharedErr)
	}
	return shared
}

func TestContractFreshImageReadsZeroes(t *testing.T) {
	img := contractImage(t)
	if got := img.Size(); got != contractSize {
		t.Fatalf("Size() = %d, want %d", got, contractSize)
	}
	checkBytes(t, img, 0, make([]byte, contractSize))
}

func TestContractRoundTrip(t *testing.T) {
	img := contractImage(t)
	tests := []struct {
		name       string
		off, n     int64
		misaligned bool // the buffer starts at an odd address
	}{
		{"first block", 0, 512, false},
		{"one page", 4096, 4096, false},
		{"across object boundary", contractObject - 512, 1024, false},
		{"last block", contractSize - 4096, 4096, false},
		{"unaligned offset and length", 513, 1000, false},
		{"single byte", 3, 1, false},
		{"many objects", 4096, 2*mib + 4096, false},
		{"misaligned buffer", 8192, 8192, true},
		{"misaligned everything", mib - 100, 300, true},
		{"unaligned tail at end", contractSize - 700, 700, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from zeroes around its range.
			if err := img.Discard(0, contractSize); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			data := randomBytes(uint64(i), int(tc.n))
			if tc.misaligned {
				data = append(make([]byte, 1, tc.n+1), data...)[1:]
			}
			mustWrite(t, img, data, tc.off)
			checkBytes(t, img, tc.off, data)
			lo, hi := max(0, tc.off-8192), min(contractSize, tc.off+tc.n+8192)
			checkBytes(t, img, lo, make([]byte, tc.off-lo))
			checkBytes(t, img, tc.off+tc.n, make([]byte, hi-tc.off-tc.n))
			p := make([]byte, tc.n+1)[1:]
			if _, err := img.ReadAt(p, tc.off); err != nil || !bytes.Equal(p, data) {
				t.Fatalf("misaligned ReadAt: err %v, equal %v", err, bytes.Equal(p, data))
			}
		})
	}
}

func TestContractOutOfRange(t *testing.T) {
	img := contractImage(t)
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"starts at end", contractSize, 1},
		{"crosses end", contractSize - 1, 2},
		{"starts past end", contractSize + 4096, 4096},
		{"negative offset", -1, 1},
		{"empty past end", contractSize + 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			if _, err := img.ReadAt(p, tc.off); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("ReadAt: err %v, want ErrOutOfRange", err)
			}
			if _, err := img.WriteAt(p, tc.off); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("WriteAt: err %v, want ErrOutOfRange", err)
			}
			if err := img.Discard(tc.off, int64(tc.n)); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("Discard: err %v, want ErrOutOfRange", err)
			}
			if tc.n > 0 {
				if err := img.WriteSame(tc.off, int64(tc.n), p[:1]); !errors.Is(err, rbdbackend.ErrOutOfRange) {
					t.Errorf("WriteSame: err %v, want ErrOutOfRange", err)
				}
			}
			if _, err := img.CompareAndWrite(tc.off, p, p); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("CompareAndWrite: err %v, want ErrOutOfRange", err)
			}
		})
	}
}

func TestContractZeroLength(t *testing.T) {
	img := contractImage(t)
	for _, off := range []int64{0, 4096, contractSize} {
		if n, err := img.ReadAt(nil, off); n != 0 || err != nil {
			t.Errorf("ReadAt(nil, %d) = %d, %v", off, n, err)
		}
		if n, err := img.WriteAt(nil, off); n != 0 || err != nil {
			t.Errorf("WriteAt(nil, %d) = %d, %v", off, n, err)
		}
		if err := img.Discard(off, 0); err != nil {
			t.Errorf("Discard(%d, 0) = %v", off, err)
		}
		if err := img.WriteSame(off, 0, []byte{1}); err != nil {
			t.Errorf("WriteSame(%d, 0) = %v", off, err)
		}
		if _, err := img.CompareAndWrite(off, nil, nil); err != nil {
			t.Errorf("CompareAndWrite(%d, empty) = %v", off, err)
		}
	}
	if allocated, n, err := img.Extent(contractSize, 4096); allocated || n != 0 || err != nil {
		t.Errorf("Extent at end = %v, %d, %v; want false, 0, nil", allocated, n, err)
	}
}

func TestContractFlush(t *testing.T) {
	img := contractImage(t)
	mustWrite(t, img, randomBytes(1, 4096), 0)
	if err := img.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestContractDiscard(t *testing.T) {
	img := contractImage(t)
	tests := []struct {
		name   string
		off, n int64
	}{
		{"whole object", contractObject, contractObject},
		{"partial block", 2*mib + 100, 1000},
		{"across object boundary", contractObject - 4096, 8192},
		{"unaligned head and tail across objects", 3*contractObject - 1000, 2*contractObject + 3000},
		{"to end of image", 4 * mib, contractSize - 4*mib},
		{"everything", 0, contractSize},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(uint64(100+i), contractSize)
			mustWrite(t, img, data, 0)
			if err := img.Discard(tc.off, tc.n); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			want := bytes.Clone(data)
			clear(want[tc.off : tc.off+tc.n])
			checkBytes(t, img, 0, want)
		})
	}
}

func TestContractWriteSame(t *testing.T) {
	img := contractImage(t)
	block := randomBytes(7, 512)
	tests := []struct {
		name    string
		off, n  int64
		pattern []byte
	}{
		{"blocks", 4096, 64 << 10, block},
		{"across object boundary", contractObject - 4096, 3 * 4096, block},
		{"many objects", 0, 3*mib + 512, block},
		{"unaligned start", 100, 5 * 512, block},
		{"odd pattern length", 4096, 7 * 520, randomBytes(8, 520)},
		{"single byte pattern", 12345, 777, []byte{0xA5}},
		{"zero pattern", 8192, 16 << 10, make([]byte, 512)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			junk := randomBytes(9, contractSize)
			mustWrite(t, img, junk, 0)
			if err := img.WriteSame(tc.off, tc.n, tc.pattern); err != nil {
				t.Fatalf("WriteSame: %v", err)
			}
			want := bytes.Clone(junk)
			for i := int64(0); i < tc.n; i++ {
				want[tc.off+i] = tc.pattern[i%int64(len(tc.pattern))]
			}
			checkBytes(t, img, 0, want)
		})
	}
	t.Run("pattern must tile the range", func(t *testing.T) {
		if err := img.Discard(0, contractSize); err != nil {
			t.Fatal(err)
		}
		for _, p := range [][]byte{nil, block} {
			if err := img.WriteSame(0, 700, p); !errors.Is(err, ErrInvalid) {
				t.Errorf("WriteSame(0, 700, %d-byte pattern): %v, want ErrInvalid", len(p), err)
			}
		}
		checkBytes(t, img, 0, make([]byte, 4096))
	})
}

func TestContractCompareAndWrite(t *testing.T) {
	img := contractImage(t)
	tests := []struct {
		name      string
		off, n    int64
		flip      int64 // byte of cmp to change; -1 keeps cmp equal
		misaligns bool
	}{
		{"match one sector (librbd)", 4096, 512, -1, false},
		{"match part of a sector (librbd)", 4096 + 100, 200, -1, false},
		{"match across object boundary", contractObject - 512, 1024, -1, false},
		{"match unaligned", 1000, 700, -1, false},
		{"match one 4k block", 8192, 4096, -1, false},
		{"match misaligned buffers", 8192, 4096, -1, true},
		{"miscompare first byte (librbd)", 4096, 512, 0, false},
		{"miscompare last byte (librbd)", 4096, 512, 511, false},
		{"miscompare inside a sector (librbd)", 4096 + 100, 200, 57, false},
		{"miscompare after object boundary", contractObject - 512, 1024, 600, false},
		{"miscompare in a 4k block", 8192, 4096, 4000, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := randomBytes(uint64(200+i), int(tc.n))
			mustWrite(t, img, old, tc.off)
			cmp, data := bytes.Clone(old), randomBytes(uint64(300+i), int(tc.n))
			if tc.misaligns {
				cmp = append(make([]byte, 1, tc.n+1), cmp...)[1:]
				data = append(make([]byte, 1, tc.n+1), data...)[1:]
			}
			if tc.flip >= 0 {
				cmp[tc.flip] ^= 0xFF
			}
			mismatch, err := img.CompareAndWrite(tc.off, cmp, data)
			if tc.flip < 0 {
				if err != nil {
					t.Fatalf("CompareAndWrite: %v", err)
				}
				checkBytes(t, img, tc.off, data)
				return
			}
			if !errors.Is(err, rbdbackend.ErrMiscompare) || mismatch != tc.flip {
				t.Fatalf("CompareAndWrite = %d, %v; want %d, ErrMiscompare", mismatch, err, tc.flip)
			}
			checkBytes(t, img, tc.off, old)
		})
	}
	t.Run("unwritten range compares as zeroes", func(t *testing.T) {
		data := randomBytes(9, 512)
		if _, err := img.CompareAndWrite(3*mib, make([]byte, 512), data); err != nil {
			t.Fatalf("CompareAndWrite over zeroes: %v", err)
		}
		checkBytes(t, img, 3*mib, data)
		cmp := make([]byte, 512)
		cmp[10] = 1
		if mismatch, err := img.CompareAndWrite(4*mib, cmp, data); mismatch != 10 || !errors.Is(err, rbdbackend.ErrMiscompare) {
			t.Fatalf("CompareAndWrite = %d, %v; want 10, ErrMiscompare", mismatch, err)
		}
	})
	t.Run("lengths must match", func(t *testing.T) {
		if _, err := img.CompareAndWrite(0, make([]byte, 512), make([]byte, 1024)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("CompareAndWrite with unequal lengths: %v, want ErrInvalid", err)
		}
	})
}

func TestContractExtent(t *testing.T) {
	img := contractImage(t)
	check := func(t *testing.T, off, maxLength int64, wantAllocated bool, wantN int64) {
		t.Helper()
		allocated, n, err := img.Extent(off, maxLength)
		if err != nil || allocated != wantAllocated || n != wantN {
			t.Fatalf("Extent(%d, %d) = %v, %d, %v; want %v, %d", off, maxLength, allocated, n, err, wantAllocated, wantN)
		}
	}
	const all = int64(1) << 62
	check(t, 0, all, false, contractSize)
	check(t, 4096, 8192, false, 8192)

	// Objects 16 and 17 (1 MiB + 128 KiB) get data: partly, so the
	// object granularity shows.
	mustWrite(t, img, randomBytes(1, contractObject+100), mib+100)
	const lo, hi = mib, mib + 2*contractObject
	check(t, 0, all, false, lo)
	check(t, lo, all, true, hi-lo)
	check(t, lo+4096, 4096, true, 4096)
	check(t, hi-1, all, true, 1)
	check(t, hi, all, false, contractSize-hi)

	// A second run of data after a hole ends the first run.
	mustWrite(t, img, randomBytes(2, 10), 2*mib)
	check(t, lo, all, true, hi-lo)
	check(t, hi, all, false, 2*mib-hi)

	if err := img.Discard(0, contractSize); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	check(t, 0, all, false, contractSize)
	for _, tc := range []struct{ off, maxLength int64 }{{contractSize + 1, 1}, {-1, 1}, {0, -1}} {
		if _, _, err := img.Extent(tc.off, tc.maxLength); !errors.Is(err, rbdbackend.ErrOutOfRange) {
			t.Errorf("Extent(%d, %d): err %v, want ErrOutOfRange", tc.off, tc.maxLength, err)
		}
	}
}

func TestContractResize(t *testing.T) {
	img := contractImage(t)
	const grown = contractSize + mib
	if err := img.Resize(grown); err != nil {
		t.Fatalf("Resize(%d): %v", grown, err)
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after growing to %d", got, grown)
	}
	checkBytes(t, img, contractSize-4096, make([]byte, mib+4096))
	data := randomBytes(3, 8192)
	mustWrite(t, img, data, contractSize-4096)
	checkBytes(t, img, contractSize-4096, data)
	if err := img.Resize(grown); err != nil {
		t.Fatalf("Resize to the same size: %v", err)
	}
	err := img.Resize(contractSize)
	if !errors.Is(err, rbdbackend.ErrUnsupported) || !errors.Is(err, ErrShrink) {
		t.Fatalf("shrinking Resize: err %v, want ErrShrink and ErrUnsupported", err)
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after refused shrink, want %d", got, grown)
	}
}

func TestContractClose(t *testing.T) {
	img := contractImage(t)
	if err := img.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	p := make([]byte, 512)
	if _, err := img.ReadAt(p, 0); !errors.Is(err, rbdbackend.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
	if _, err := img.WriteAt(p, 0); !errors.Is(err, rbdbackend.ErrClosed) {
		t.Errorf("WriteAt after Close: %v, want ErrClosed", err)
	}
	if err := img.Flush(); !errors.Is(err, rbdbackend.ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if _, err := img.CompareAndWrite(0, p, p); !errors.Is(err, rbdbackend.ErrClosed) {
		t.Errorf("CompareAndWrite after Close: %v, want ErrClosed", err)
	}
	if err := img.Close(); !errors.Is(err, rbdbackend.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

// TestContractConcurrentWriters has goroutines write interleaved blocks
// (sharing objects) while reading elsewhere, then checks every block.
func TestContractConcurrentWriters(t *testing.T) {
	img := contractImage(t)
	const workers, block = 16, 4096
	blocks := int64(contractSize / block)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := int64(w); b < blocks; b += workers {
				if _, err := img.WriteAt(randomBytes(uint64(b), block), b*block); err != nil {
					t.Errorf("WriteAt block %d: %v", b, err)
					return
				}
				if _, err := img.ReadAt(make([]byte, block), ((b*7)%blocks)*block); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for b := range blocks {
		checkBytes(t, img, b*block, randomBytes(uint64(b), block))
	}
}

// counterRace increments a counter in an n-byte block at off from many
// goroutines with compare-and-write retries: a lost update means two
// compare-and-writes interleaved.
func counterRace(t *testing.T, img *Image, off, n int64, workers, increments int) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cur, next := make([]byte, n), make([]byte, n)
			for done := 0; done < increments; {
				if _, err := img.ReadAt(cur, off); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				copy(next, cur)
				binary.LittleEndian.PutUint64(next, binary.LittleEndian.Uint64(cur)+1)
				next[n-1] = byte(w) // mark the writer so equal counters still differ
				_, err := img.CompareAndWrite(off, cur, next)
				switch {
				case err == nil:
					done++
				case !errors.Is(err, rbdbackend.ErrMiscompare):
					t.Errorf("CompareAndWrite: %v", err)
					return
				}
			}
		})
	}
	// Plain writes next to the counter must not disturb it.
	wg.Go(func() {
		for i := range 100 {
			if _, err := img.WriteAt(randomBytes(uint64(i), 4096), off+n+512); err != nil {
				t.Errorf("WriteAt: %v", err)
				return
			}
		}
	})
	wg.Wait()
	got := binary.LittleEndian.Uint64(mustRead(t, img, off, 8))
	if got != uint64(workers*increments) {
		t.Fatalf("counter = %d, want %d", got, workers*increments)
	}
}

func TestContractCompareAndWriteCounter(t *testing.T) {
	t.Run("librbd sector", func(t *testing.T) {
		counterRace(t, contractImage(t), mib, 512, 6, 60)
	})
	t.Run("locked, straddling an object boundary", func(t *testing.T) {
		counterRace(t, contractImage(t), contractObject-256, 512, 6, 60)
	})
}

// TestContractCompareAndWriteSeesWholeWrites races writes of an all-A block
// across an object boundary with CompareAndWrite(A -> B). If either could
// interleave with the other, a compare would see a torn block and report
// a mismatch past byte 0.
func TestContractCompareAndWriteSeesWholeWrites(t *testing.T) {
	img := contractImage(t)
	const n = 8192
	const off = 2*contractObject - n/2
	a, b := bytes.Repeat([]byte{0xAA}, n), bytes.Repeat([]byte{0xBB}, n)
	mustWrite(t, img, a, off)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			if _, err := img.WriteAt(a, off); err != nil {
				t.Errorf("WriteAt: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			mismatch, err := img.CompareAndWrite(off, a, b)
			if err != nil && (!errors.Is(err, rbdbackend.ErrMiscompare) || mismatch != 0) {
				t.Errorf("CompareAndWrite = %d, %v: saw a torn block", mismatch, err)
				return
			}
		}
	})
	wg.Wait()
	got := mustRead(t, img, off, n)
	if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
		t.Fatal("block is torn after the race")
	}
}
