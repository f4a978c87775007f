// Package imagetest is the behaviour every rbdbackend.Image must share,
// as a test suite an implementation runs against itself:
//
//	func TestContract(t *testing.T) {
//		imagetest.Run(t, func(t testing.TB, size int64) rbdbackend.Image { ... })
//	}
//
// Cases for an optional capability are skipped when the image lacks it.
// The suite asks only for what the interface promises; precision an
// implementation may trade away (how finely Extent reports allocation,
// which error refuses a shrink) is for the implementation's own tests.
package imagetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Factory opens a fresh image of size bytes whose bytes all read as zero,
// and closes it when the test ends (ignoring rbdbackend.ErrClosed).
type Factory func(t testing.TB, size int64) rbdbackend.Image

// Size is the size of the images the suite asks for. It is not a multiple
// of 1 MiB, so a last chunk or object is partial, but is a multiple of
// 4 KiB so O_DIRECT files accept it.
const Size = 5<<20 + 3*4096

const mib = 1 << 20

// Run runs every case of the suite, each as a subtest with fresh images.
func Run(t *testing.T, open Factory) {
	cases := []struct {
		name string
		run  func(t *testing.T, open Factory)
	}{
		{"FreshImageReadsZeroes", contractFreshZeroes},
		{"WriteReadRoundTrip", contractRoundTrip},
		{"OutOfRange", contractOutOfRange},
		{"ZeroLength", contractZeroLength},
		{"Flush", contractFlush},
		{"Discard", contractDiscard},
		{"WriteSame", contractWriteSame},
		{"CompareAndWrite", contractCompareAndWrite},
		{"Extent", contractExtent},
		{"Resize", contractResize},
		{"Close", contractClose},
		{"ConcurrentWriters", contractConcurrentWriters},
		{"CompareAndWriteCounter", contractCompareAndWriteCounter},
		{"CompareAndWriteSeesWholeWrites", contractCompareAndWriteSeesWholeWrites},
		{"AtomicWritesAreWhole", contractAtomicWritesAreWhole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// randomBytes returns n bytes that depend only on seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func mustWrite(t testing.TB, img rbdbackend.Image, p []byte, off int64) {
	t.Helper()
	n, err := img.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
	}
}

func mustRead(t testing.TB, img rbdbackend.Image, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := img.ReadAt(p, off)
	if err != nil || got != len(p) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
	}
	return p
}

// checkBytes fails unless img holds want at off.
func checkBytes(t testing.TB, img rbdbackend.Image, off int64, want []byte) {
	t.Helper()
	got := mustRead(t, img, off, int64(len(want)))
	if d := firstDifference(got, want); d >= 0 {
		t.Fatalf("at %d: byte %d is %#x, want %#x", off, off+int64(d), got[d], want[d])
	}
}

// firstDifference returns the index of the first byte where a and b differ,
// or -1 when they are equal.
func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// caps returns the optional capabilities of img.
func caps(img rbdbackend.Image) rbdbackend.Capabilities { return rbdbackend.CapabilitiesOf(img) }

// need returns c, one of an image's capabilities, and skips the test when
// the image lacks it (c is nil).
func need[C any](t *testing.T, c C) C {
	t.Helper()
	if any(c) == nil {
		t.Skipf("the image lacks %s", reflect.TypeFor[C]())
	}
	return c
}

func contractFreshZeroes(t *testing.T, open Factory) {
	img := open(t, Size)
	if got := img.Size(); got != Size {
		t.Fatalf("Size() = %d, want %d", got, Size)
	}
	checkBytes(t, img, 0, make([]byte, Size))
}

func contractRoundTrip(t *testing.T, open Factory) {
	tests := []struct {
		name string
		off  int64
		n    int64
		// misaligned hands the image a buffer at an odd address.
		misaligned bool
	}{
		{"first block", 0, 512, false},
		{"one page", 4096, 4096, false},
		{"across chunk boundary", mib - 512, 1024, false},
		{"last block", Size - 4096, 4096, false},
		{"unaligned offset and length", 513, 1000, false},
		{"single byte", 3, 1, false},
		{"large spanning chunks", 4096, 2*mib + 4096, false},
		{"misaligned buffer", 8192, 8192, true},
		{"misaligned everything", mib - 100, 300, true},
		{"unaligned tail at end", Size - 700, 700, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, Size)
			data := randomBytes(uint64(i), int(tc.n))
			if tc.misaligned {
				data = append(make([]byte, 1, tc.n+1), data...)[1:]
			}
			mustWrite(t, img, data, tc.off)
			checkBytes(t, img, tc.off, data)
			// The bytes around the write stay zero.
			lo, hi := max(0, tc.off-8192), min(Size, tc.off+tc.n+8192)
			checkBytes(t, img, lo, make([]byte, tc.off-lo))
			checkBytes(t, img, tc.off+tc.n, make([]byte, hi-tc.off-tc.n))
			// Reading into a misaligned buffer gives the same bytes.
			p := make([]byte, tc.n+1)[1:]
			if _, err := img.ReadAt(p, tc.off); err != nil || !bytes.Equal(p, data) {
				t.Fatalf("misaligned ReadAt: err %v, equal %v", err, bytes.Equal(p, data))
			}
		})
	}
}

func contractOutOfRange(t *testing.T, open Factory) {
	img := open(t, Size)
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"starts at end", Size, 1},
		{"crosses end", Size - 1, 2},
		{"starts past end", Size + 4096, 4096},
		{"negative offset", -1, 1},
		{"empty past end", Size + 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			if _, err := img.ReadAt(p, tc.off); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("ReadAt: err %v, want rbdbackend.ErrOutOfRange", err)
			}
			if _, err := img.WriteAt(p, tc.off); !errors.Is(err, rbdbackend.ErrOutOfRange) {
				t.Errorf("WriteAt: err %v, want rbdbackend.ErrOutOfRange", err)
			}
			if d := caps(img).Discarder; d != nil {
				if err := d.Discard(tc.off, int64(tc.n)); !errors.Is(err, rbdbackend.ErrOutOfRange) {
					t.Errorf("Discard: err %v, want rbdbackend.ErrOutOfRange", err)
				}
			}
			if ws := caps(img).WriteSamer; ws != nil && tc.n > 0 {
				if err := ws.WriteSame(tc.off, int64(tc.n), p[:1]); !errors.Is(err, rbdbackend.ErrOutOfRange) {
					t.Errorf("WriteSame: err %v, want rbdbackend.ErrOutOfRange", err)
				}
			}
			if cw := caps(img).CompareAndWriter; cw != nil {
				if _, err := cw.CompareAndWrite(tc.off, p, p); !errors.Is(err, rbdbackend.ErrOutOfRange) {
					t.Errorf("CompareAndWrite: err %v, want rbdbackend.ErrOutOfRange", err)
				}
			}
		})
	}
}

func contractZeroLength(t *testing.T, open Factory) {
	img := open(t, Size)
	for _, off := range []int64{0, 4096, Size} {
		if n, err := img.ReadAt(nil, off); n != 0 || err != nil {
			t.Errorf("ReadAt(nil, %d) = %d, %v", off, n, err)
		}
		if n, err := img.WriteAt(nil, off); n != 0 || err != nil {
			t.Errorf("WriteAt(nil, %d) = %d, %v", off, n, err)
		}
		if d := caps(img).Discarder; d != nil {
			if err := d.Discard(off, 0); err != nil {
				t.Errorf("Discard(%d, 0) = %v", off, err)
			}
		}
		if ws := caps(img).WriteSamer; ws != nil {
			if err := ws.WriteSame(off, 0, []byte{1}); err != nil {
				t.Errorf("WriteSame(%d, 0) = %v", off, err)
			}
		}
		if cw := caps(img).CompareAndWriter; cw != nil {
			if _, err := cw.CompareAndWrite(off, nil, nil); err != nil {
				t.Errorf("CompareAndWrite(%d, empty) = %v", off, err)
			}
		}
	}
	if a := caps(img).AllocationReporter; a != nil {
		if allocated, n, err := a.Extent(Size, 4096); allocated || n != 0 || err != nil {
			t.Errorf("Extent at end = %v, %d, %v; want false, 0, nil", allocated, n, err)
		}
	}
}

func contractFlush(t *testing.T, open Factory) {
	img := open(t, Size)
	f := need(t, caps(img).Flusher)
	mustWrite(t, img, randomBytes(1, 4096), 0)
	if err := f.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func contractDiscard(t *testing.T, open Factory) {
	tests := []struct {
		name   string
		off, n int64
	}{
		{"whole chunk", mib, mib},
		{"partial block", 2*mib + 100, 1000},
		{"across chunk boundary", mib - 4096, 8192},
		{"to end of image", 4 * mib, Size - 4*mib},
		{"everything", 0, Size},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, Size)
			d := need(t, caps(img).Discarder)
			data := randomBytes(uint64(100+i), Size)
			mustWrite(t, img, data, 0)
			if err := d.Discard(tc.off, tc.n); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			want := bytes.Clone(data)
			clear(want[tc.off : tc.off+tc.n])
			checkBytes(t, img, 0, want)
		})
	}
}

func contractWriteSame(t *testing.T, open Factory) {
	block := randomBytes(7, 512)
	tests := []struct {
		name    string
		off, n  int64
		pattern []byte
	}{
		{"blocks", 4096, 64 << 10, block},
		{"across chunk boundary", mib - 4096, 3 * 4096, block},
		{"more than a bounce buffer", 0, 3*mib + 512, block},
		{"unaligned start", 100, 5 * 512, block},
		{"odd pattern length", 4096, 7 * 520, randomBytes(8, 520)},
		{"single byte pattern", 12345, 777, []byte{0xA5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, Size)
			ws := need(t, caps(img).WriteSamer)
			if err := ws.WriteSame(tc.off, tc.n, tc.pattern); err != nil {
				t.Fatalf("WriteSame: %v", err)
			}
			want := make([]byte, Size)
			repeats := int(tc.n) / len(tc.pattern)
			copy(want[tc.off:], bytes.Repeat(tc.pattern, repeats))
			checkBytes(t, img, 0, want)
		})
	}
	t.Run("pattern must tile the range", func(t *testing.T) {
		img := open(t, Size)
		ws := need(t, caps(img).WriteSamer)
		for _, p := range [][]byte{nil, block} {
			if err := ws.WriteSame(0, 700, p); err == nil {
				t.Errorf("WriteSame(0, 700, %d-byte pattern) succeeded", len(p))
			}
		}
		checkBytes(t, img, 0, make([]byte, 4096))
	})
}

func contractCompareAndWrite(t *testing.T, open Factory) {
	tests := []struct {
		name      string
		off, n    int64
		flip      int64 // byte of cmp to change; -1 keeps cmp equal
		misaligns bool
	}{
		{"match one block", 4096, 512, -1, false},
		{"match across chunk boundary", mib - 512, 1024, -1, false},
		{"match unaligned", 1000, 700, -1, false},
		{"match misaligned buffers", 8192, 4096, -1, true},
		{"miscompare first byte", 4096, 512, 0, false},
		{"miscompare last byte", 4096, 512, 511, false},
		{"miscompare after chunk boundary", mib - 512, 1024, 600, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, Size)
			cw := need(t, caps(img).CompareAndWriter)
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
			mismatch, err := cw.CompareAndWrite(tc.off, cmp, data)
			if tc.flip < 0 {
				if err != nil {
					t.Fatalf("CompareAndWrite: %v", err)
				}
				checkBytes(t, img, tc.off, data)
				return
			}
			if !errors.Is(err, rbdbackend.ErrMiscompare) || mismatch != tc.flip {
				t.Fatalf("CompareAndWrite = %d, %v; want %d, rbdbackend.ErrMiscompare", mismatch, err, tc.flip)
			}
			checkBytes(t, img, tc.off, old)
		})
	}
	t.Run("unwritten range compares as zeroes", func(t *testing.T) {
		img := open(t, Size)
		cw := need(t, caps(img).CompareAndWriter)
		data := randomBytes(9, 512)
		if _, err := cw.CompareAndWrite(3*mib, make([]byte, 512), data); err != nil {
			t.Fatalf("CompareAndWrite over zeroes: %v", err)
		}
		checkBytes(t, img, 3*mib, data)
		cmp := make([]byte, 512)
		cmp[10] = 1
		if mismatch, err := cw.CompareAndWrite(4*mib, cmp, data); mismatch != 10 || !errors.Is(err, rbdbackend.ErrMiscompare) {
			t.Fatalf("CompareAndWrite = %d, %v; want 10, rbdbackend.ErrMiscompare", mismatch, err)
		}
	})
	t.Run("lengths must match", func(t *testing.T) {
		img := open(t, Size)
		cw := need(t, caps(img).CompareAndWriter)
		if _, err := cw.CompareAndWrite(0, make([]byte, 512), make([]byte, 1024)); err == nil {
			t.Fatal("CompareAndWrite with unequal lengths succeeded")
		}
	})
}

// contractExtent checks what GET LBA STATUS relies on, whatever the
// granularity: runs tile the image, a run reported unallocated reads as
// zeroes, and written bytes are reported allocated.
func contractExtent(t *testing.T, open Factory) {
	img := open(t, Size)
	a := need(t, caps(img).AllocationReporter)
	const all = int64(1) << 62
	if allocated, n, err := a.Extent(0, all); err != nil || allocated || n != Size {
		t.Fatalf("fresh image: Extent(0) = %v, %d, %v; want false, %d", allocated, n, err, int64(Size))
	}
	written := [][2]int64{{mib, mib}, {3*mib + 4096, 512}}
	for i, w := range written {
		mustWrite(t, img, randomBytes(uint64(400+i), int(w[1])), w[0])
	}
	checkExtentsTile(t, img, a)
	for _, w := range written {
		for _, off := range []int64{w[0], w[0] + w[1] - 1} {
			if allocated, n, err := a.Extent(off, 1); err != nil || !allocated || n != 1 {
				t.Fatalf("written byte %d: Extent(%d, 1) = %v, %d, %v; want true, 1", off, off, allocated, n, err)
			}
		}
	}
	if d := caps(img).Discarder; d != nil {
		if err := d.Discard(mib, mib); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		checkExtentsTile(t, img, a)
	}
	for _, tc := range []struct{ off, maxLength int64 }{{Size + 1, 1}, {-1, 1}, {0, -1}} {
		if _, _, err := a.Extent(tc.off, tc.maxLength); !errors.Is(err, rbdbackend.ErrOutOfRange) {
			t.Errorf("Extent(%d, %d): err %v, want ErrOutOfRange", tc.off, tc.maxLength, err)
		}
	}
}

// checkExtentsTile walks the image run by run, with and without a length
// limit, and reads every unallocated run.
func checkExtentsTile(t *testing.T, img rbdbackend.Image, a rbdbackend.AllocationReporter) {
	t.Helper()
	for _, limit := range []int64{1 << 62, 300 << 10} {
		for off := int64(0); off < Size; {
			allocated, n, err := a.Extent(off, limit)
			if err != nil || n < 1 || n > limit || n > Size-off {
				t.Fatalf("Extent(%d, %d) = %v, %d, %v", off, limit, allocated, n, err)
			}
			if !allocated {
				checkBytes(t, img, off, make([]byte, n))
			}
			off += n
		}
	}
}

func contractResize(t *testing.T, open Factory) {
	img := open(t, Size)
	r := need(t, caps(img).Resizer)
	const grown = Size + mib
	if err := r.Resize(grown); err != nil {
		t.Fatalf("Resize(%d): %v", grown, err)
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after growing to %d", got, grown)
	}
	checkBytes(t, img, Size-4096, make([]byte, mib+4096))
	data := randomBytes(3, 8192)
	mustWrite(t, img, data, Size-4096)
	checkBytes(t, img, Size-4096, data)

	if err := r.Resize(grown); err != nil {
		t.Fatalf("Resize to the same size: %v", err)
	}
	if err := r.Resize(Size); err == nil {
		t.Fatal("shrinking Resize succeeded")
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after refused shrink, want %d", got, grown)
	}
}

func contractClose(t *testing.T, open Factory) {
	img := open(t, Size)
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
	if f := caps(img).Flusher; f != nil {
		if err := f.Flush(); !errors.Is(err, rbdbackend.ErrClosed) {
			t.Errorf("Flush after Close: %v, want ErrClosed", err)
		}
	}
	if cw := caps(img).CompareAndWriter; cw != nil {
		if _, err := cw.CompareAndWrite(0, p, p); !errors.Is(err, rbdbackend.ErrClosed) {
			t.Errorf("CompareAndWrite after Close: %v, want ErrClosed", err)
		}
	}
}

// contractConcurrentWriters has goroutines write interleaved blocks (so
// they share chunks and stripes) and checks every block afterwards.
func contractConcurrentWriters(t *testing.T, open Factory) {
	img := open(t, Size)
	const workers, block = 8, 4096
	blocks := int64(Size / block)
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

// contractCompareAndWriteCounter increments one counter from many
// goroutines with compare-and-write retries: a lost update means two
// CompareAndWrites interleaved.
func contractCompareAndWriteCounter(t *testing.T, open Factory) {
	img := open(t, Size)
	cw := need(t, caps(img).CompareAndWriter)
	const workers, increments, block = 6, 150, 512
	const off = mib - block/2 // the counter block straddles a chunk boundary
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cur := make([]byte, block)
			next := make([]byte, block)
			for done := 0; done < increments; {
				if _, err := img.ReadAt(cur, off); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				copy(next, cur)
				binary.LittleEndian.PutUint64(next, binary.LittleEndian.Uint64(cur)+1)
				next[block-1] = byte(w) // mark the writer so equal counters still differ
				_, err := cw.CompareAndWrite(off, cur, next)
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
		for i := range 200 {
			mustWriteNoFatal(t, img, randomBytes(uint64(i), 4096), off+block+512)
		}
	})
	wg.Wait()
	got := binary.LittleEndian.Uint64(mustRead(t, img, off, 8))
	if got != workers*increments {
		t.Fatalf("counter = %d, want %d", got, workers*increments)
	}
}

// contractCompareAndWriteSeesWholeWrites races writes of an all-A block that
// straddles a chunk boundary with CompareAndWrite(A -> B). If either could
// interleave with the other, a compare would find the block half A, half
// B, and report a mismatch past byte 0.
func contractCompareAndWriteSeesWholeWrites(t *testing.T, open Factory) {
	img := open(t, Size)
	cw := need(t, caps(img).CompareAndWriter)
	const n = 8192
	const off = 2*mib - n/2
	a, b := bytes.Repeat([]byte{0xAA}, n), bytes.Repeat([]byte{0xBB}, n)
	mustWrite(t, img, a, off)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 5000 {
			mustWriteNoFatal(t, img, a, off)
		}
	})
	wg.Go(func() {
		for range 5000 {
			mismatch, err := cw.CompareAndWrite(off, a, b)
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

func mustWriteNoFatal(t testing.TB, img rbdbackend.Image, p []byte, off int64) {
	if _, err := img.WriteAt(p, off); err != nil {
		t.Errorf("WriteAt(%d bytes, %d): %v", len(p), off, err)
	}
}

// contractAtomicWritesAreWhole races writers of two patterns over one range
// within the atomic write limits (straddling a 1 MiB boundary when the
// alignment allows) with readers of the whole range: every read must see a
// single pattern, never parts of two writes.
func contractAtomicWritesAreWhole(t *testing.T, open Factory) {
	img := open(t, Size)
	maxBytes, align, gran := need(t, caps(img).AtomicWriter).AtomicWriteLimits()
	if maxBytes <= 0 {
		t.Skip("the image promises no atomic write")
	}
	n := min(maxBytes, 256<<10, Size)
	if gran > 1 {
		n -= n % gran
	}
	if n <= 0 {
		t.Fatalf("limits (%d, %d, %d) allow no write the suite can make", maxBytes, align, gran)
	}
	off := max(mib-n/2, 0)
	if align > 1 {
		off -= off % align
	}
	if off+n > Size {
		t.Fatalf("limits (%d, %d, %d) allow no write within %d bytes", maxBytes, align, gran, Size)
	}
	patterns := [][]byte{bytes.Repeat([]byte{0xAA}, int(n)), bytes.Repeat([]byte{0xBB}, int(n))}
	const rounds = 300
	var wg sync.WaitGroup
	for _, p := range patterns {
		wg.Go(func() {
			for range rounds {
				mustWriteNoFatal(t, img, p, off)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, n)
			for range rounds {
				if _, err := img.ReadAt(buf, off); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				if i := firstDifference(buf, bytes.Repeat(buf[:1], len(buf))); i >= 0 {
					t.Errorf("read of %d bytes at %d is torn at byte %d", n, off, i)
					return
				}
			}
		})
	}
	wg.Wait()
}
