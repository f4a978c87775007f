package rbdbackend

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
)

// imageFactory opens a fresh, empty image of size bytes that is closed when
// the test ends.
type imageFactory func(t testing.TB, size int64) Image

// contractSize is not a multiple of the memory chunk (1 MiB) so the last
// chunk is partial, but is a multiple of 4 KiB so O_DIRECT files accept it.
const contractSize = 5<<20 + 3*4096

const mib = 1 << 20

// imageImplementations lists every Image the contract runs against.
func imageImplementations() []struct {
	name string
	open imageFactory
} {
	return []struct {
		name string
		open imageFactory
	}{
		{"memory", openMemoryForTest},
		{"file", openFileForTest(FileOptions{})},
		{"file-direct", openFileForTest(FileOptions{Direct: true})},
		{"fault-over-memory", func(t testing.TB, size int64) Image {
			return NewFaultImage(openMemoryForTest(t, size))
		}},
	}
}

func openMemoryForTest(t testing.TB, size int64) Image {
	img := NewMemoryImage(size)
	t.Cleanup(func() { img.Close() })
	return img
}

func openFileForTest(opts FileOptions) imageFactory {
	return func(t testing.TB, size int64) Image {
		opts := opts
		opts.Size = size
		img, err := OpenFileImage(filepath.Join(t.TempDir(), "image"), opts)
		if err != nil {
			t.Fatalf("OpenFileImage: %v", err)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
}

func TestImageContract(t *testing.T) {
	for _, impl := range imageImplementations() {
		t.Run(impl.name, func(t *testing.T) {
			runImageContract(t, impl.open)
		})
	}
}

// runImageContract checks the behaviour every Image shares. Capability
// cases are skipped for images that lack the capability.
func runImageContract(t *testing.T, open imageFactory) {
	cases := []struct {
		name string
		run  func(t *testing.T, open imageFactory)
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

func mustWrite(t testing.TB, img Image, p []byte, off int64) {
	t.Helper()
	n, err := img.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
	}
}

func mustRead(t testing.TB, img Image, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := img.ReadAt(p, off)
	if err != nil || got != len(p) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
	}
	return p
}

// checkBytes fails unless img holds want at off.
func checkBytes(t testing.TB, img Image, off int64, want []byte) {
	t.Helper()
	got := mustRead(t, img, off, int64(len(want)))
	if d := firstDifference(got, want); d >= 0 {
		t.Fatalf("at %d: byte %d is %#x, want %#x", off, off+int64(d), got[d], want[d])
	}
}

func capability[C any](t *testing.T, img Image) C {
	t.Helper()
	c, ok := img.(C)
	if !ok {
		t.Skipf("%T lacks the capability", img)
	}
	return c
}

func contractFreshZeroes(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	if got := img.Size(); got != contractSize {
		t.Fatalf("Size() = %d, want %d", got, contractSize)
	}
	checkBytes(t, img, 0, make([]byte, contractSize))
}

func contractRoundTrip(t *testing.T, open imageFactory) {
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
		{"last block", contractSize - 4096, 4096, false},
		{"unaligned offset and length", 513, 1000, false},
		{"single byte", 3, 1, false},
		{"large spanning chunks", 4096, 2*mib + 4096, false},
		{"misaligned buffer", 8192, 8192, true},
		{"misaligned everything", mib - 100, 300, true},
		{"unaligned tail at end", contractSize - 700, 700, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, contractSize)
			data := randomBytes(uint64(i), int(tc.n))
			if tc.misaligned {
				data = append(make([]byte, 1, tc.n+1), data...)[1:]
			}
			mustWrite(t, img, data, tc.off)
			checkBytes(t, img, tc.off, data)
			// The bytes around the write stay zero.
			lo, hi := max(0, tc.off-8192), min(contractSize, tc.off+tc.n+8192)
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

func contractOutOfRange(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
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
			if _, err := img.ReadAt(p, tc.off); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("ReadAt: err %v, want ErrOutOfRange", err)
			}
			if _, err := img.WriteAt(p, tc.off); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("WriteAt: err %v, want ErrOutOfRange", err)
			}
			if d, ok := img.(Discarder); ok {
				if err := d.Discard(tc.off, int64(tc.n)); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("Discard: err %v, want ErrOutOfRange", err)
				}
			}
			if ws, ok := img.(WriteSamer); ok && tc.n > 0 {
				if err := ws.WriteSame(tc.off, int64(tc.n), p[:1]); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("WriteSame: err %v, want ErrOutOfRange", err)
				}
			}
			if cw, ok := img.(CompareAndWriter); ok {
				if _, err := cw.CompareAndWrite(tc.off, p, p); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("CompareAndWrite: err %v, want ErrOutOfRange", err)
				}
			}
		})
	}
}

func contractZeroLength(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	for _, off := range []int64{0, 4096, contractSize} {
		if n, err := img.ReadAt(nil, off); n != 0 || err != nil {
			t.Errorf("ReadAt(nil, %d) = %d, %v", off, n, err)
		}
		if n, err := img.WriteAt(nil, off); n != 0 || err != nil {
			t.Errorf("WriteAt(nil, %d) = %d, %v", off, n, err)
		}
		if d, ok := img.(Discarder); ok {
			if err := d.Discard(off, 0); err != nil {
				t.Errorf("Discard(%d, 0) = %v", off, err)
			}
		}
		if ws, ok := img.(WriteSamer); ok {
			if err := ws.WriteSame(off, 0, []byte{1}); err != nil {
				t.Errorf("WriteSame(%d, 0) = %v", off, err)
			}
		}
		if cw, ok := img.(CompareAndWriter); ok {
			if _, err := cw.CompareAndWrite(off, nil, nil); err != nil {
				t.Errorf("CompareAndWrite(%d, empty) = %v", off, err)
			}
		}
	}
	if a, ok := img.(AllocationReporter); ok {
		if allocated, n, err := a.Extent(contractSize, 4096); allocated || n != 0 || err != nil {
			t.Errorf("Extent at end = %v, %d, %v; want false, 0, nil", allocated, n, err)
		}
	}
}

func contractFlush(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	f := capability[Flusher](t, img)
	mustWrite(t, img, randomBytes(1, 4096), 0)
	if err := f.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func contractDiscard(t *testing.T, open imageFactory) {
	tests := []struct {
		name   string
		off, n int64
	}{
		{"whole chunk", mib, mib},
		{"partial block", 2*mib + 100, 1000},
		{"across chunk boundary", mib - 4096, 8192},
		{"to end of image", 4 * mib, contractSize - 4*mib},
		{"everything", 0, contractSize},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := open(t, contractSize)
			d := capability[Discarder](t, img)
			data := randomBytes(uint64(100+i), contractSize)
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

func contractWriteSame(t *testing.T, open imageFactory) {
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
			img := open(t, contractSize)
			ws := capability[WriteSamer](t, img)
			if err := ws.WriteSame(tc.off, tc.n, tc.pattern); err != nil {
				t.Fatalf("WriteSame: %v", err)
			}
			want := make([]byte, contractSize)
			for i := int64(0); i < tc.n; i++ {
				want[tc.off+i] = tc.pattern[i%int64(len(tc.pattern))]
			}
			checkBytes(t, img, 0, want)
		})
	}
	t.Run("pattern must tile the range", func(t *testing.T) {
		img := open(t, contractSize)
		ws := capability[WriteSamer](t, img)
		for _, p := range [][]byte{nil, block} {
			if err := ws.WriteSame(0, 700, p); err == nil {
				t.Errorf("WriteSame(0, 700, %d-byte pattern) succeeded", len(p))
			}
		}
		checkBytes(t, img, 0, make([]byte, 4096))
	})
}

func contractCompareAndWrite(t *testing.T, open imageFactory) {
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
			img := open(t, contractSize)
			cw := capability[CompareAndWriter](t, img)
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
			if !errors.Is(err, ErrMiscompare) || mismatch != tc.flip {
				t.Fatalf("CompareAndWrite = %d, %v; want %d, ErrMiscompare", mismatch, err, tc.flip)
			}
			checkBytes(t, img, tc.off, old)
		})
	}
	t.Run("unwritten range compares as zeroes", func(t *testing.T) {
		img := open(t, contractSize)
		cw := capability[CompareAndWriter](t, img)
		data := randomBytes(9, 512)
		if _, err := cw.CompareAndWrite(3*mib, make([]byte, 512), data); err != nil {
			t.Fatalf("CompareAndWrite over zeroes: %v", err)
		}
		checkBytes(t, img, 3*mib, data)
		cmp := make([]byte, 512)
		cmp[10] = 1
		if mismatch, err := cw.CompareAndWrite(4*mib, cmp, data); mismatch != 10 || !errors.Is(err, ErrMiscompare) {
			t.Fatalf("CompareAndWrite = %d, %v; want 10, ErrMiscompare", mismatch, err)
		}
	})
	t.Run("lengths must match", func(t *testing.T) {
		img := open(t, contractSize)
		cw := capability[CompareAndWriter](t, img)
		if _, err := cw.CompareAndWrite(0, make([]byte, 512), make([]byte, 1024)); err == nil {
			t.Fatal("CompareAndWrite with unequal lengths succeeded")
		}
	})
}

func contractExtent(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	a := capability[AllocationReporter](t, img)
	type want struct {
		allocated bool
		n         int64
	}
	check := func(t *testing.T, off, maxLength int64, w want) {
		t.Helper()
		allocated, n, err := a.Extent(off, maxLength)
		if err != nil || allocated != w.allocated || n != w.n {
			t.Fatalf("Extent(%d, %d) = %v, %d, %v; want %v, %d", off, maxLength, allocated, n, err, w.allocated, w.n)
		}
	}
	const all = int64(1) << 62
	check(t, 0, all, want{false, contractSize})
	check(t, 4096, 8192, want{false, 8192})

	mustWrite(t, img, randomBytes(1, mib), mib)
	check(t, 0, all, want{false, mib})
	check(t, mib, all, want{true, mib})
	check(t, mib+4096, 4096, want{true, 4096})
	check(t, 2*mib, all, want{false, contractSize - 2*mib})

	d, ok := img.(Discarder)
	if ok {
		if err := d.Discard(mib, mib); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		check(t, 0, all, want{false, contractSize})
	}
	for _, tc := range []struct{ off, maxLength int64 }{{contractSize + 1, 1}, {-1, 1}, {0, -1}} {
		if _, _, err := a.Extent(tc.off, tc.maxLength); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Extent(%d, %d): err %v, want ErrOutOfRange", tc.off, tc.maxLength, err)
		}
	}
}

func contractResize(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	r := capability[Resizer](t, img)
	const grown = contractSize + mib
	if err := r.Resize(grown); err != nil {
		t.Fatalf("Resize(%d): %v", grown, err)
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after growing to %d", got, grown)
	}
	checkBytes(t, img, contractSize-4096, make([]byte, mib+4096))
	data := randomBytes(3, 8192)
	mustWrite(t, img, data, contractSize-4096)
	checkBytes(t, img, contractSize-4096, data)

	if err := r.Resize(grown); err != nil {
		t.Fatalf("Resize to the same size: %v", err)
	}
	if err := r.Resize(contractSize); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("shrinking Resize: err %v, want ErrUnsupported", err)
	}
	if got := img.Size(); got != grown {
		t.Fatalf("Size() = %d after refused shrink, want %d", got, grown)
	}
}

func contractClose(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	if err := img.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	p := make([]byte, 512)
	if _, err := img.ReadAt(p, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
	if _, err := img.WriteAt(p, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAt after Close: %v, want ErrClosed", err)
	}
	if f, ok := img.(Flusher); ok {
		if err := f.Flush(); !errors.Is(err, ErrClosed) {
			t.Errorf("Flush after Close: %v, want ErrClosed", err)
		}
	}
	if cw, ok := img.(CompareAndWriter); ok {
		if _, err := cw.CompareAndWrite(0, p, p); !errors.Is(err, ErrClosed) {
			t.Errorf("CompareAndWrite after Close: %v, want ErrClosed", err)
		}
	}
	if err := img.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

// contractConcurrentWriters has goroutines write interleaved blocks (so
// they share chunks and stripes) and checks every block afterwards.
func contractConcurrentWriters(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	const workers, block = 8, 4096
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

// contractCompareAndWriteCounter increments one counter from many
// goroutines with compare-and-write retries: a lost update means two
// CompareAndWrites interleaved.
func contractCompareAndWriteCounter(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	cw := capability[CompareAndWriter](t, img)
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
				case !errors.Is(err, ErrMiscompare):
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
func contractCompareAndWriteSeesWholeWrites(t *testing.T, open imageFactory) {
	img := open(t, contractSize)
	cw := capability[CompareAndWriter](t, img)
	const n = 8192
	const off = 2*mib - n/2
	a, b := bytes.Repeat([]byte{0xAA}, n), bytes.Repeat([]byte{0xBB}, n)
	mustWrite(t, img, a, off)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			mustWriteNoFatal(t, img, a, off)
		}
	})
	wg.Go(func() {
		for range 1000 {
			mismatch, err := cw.CompareAndWrite(off, a, b)
			if err != nil && (!errors.Is(err, ErrMiscompare) || mismatch != 0) {
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

func mustWriteNoFatal(t testing.TB, img Image, p []byte, off int64) {
	if _, err := img.WriteAt(p, off); err != nil {
		t.Errorf("WriteAt(%d bytes, %d): %v", len(p), off, err)
	}
}
