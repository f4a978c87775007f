package rbdbackend

import (
	"errors"
	"runtime"
	"testing"
)

func TestMemoryImageIsSparse(t *testing.T) {
	const size = 64 << 40 // 64 TiB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img := NewMemoryImage(size)
	defer img.Close()
	data := randomBytes(1, 4096)
	mustWrite(t, img, data, size-4096)
	runtime.GC()
	runtime.ReadMemStats(&after)
	// One chunk, one leaf and one pointer per GiB: a few MiB at most.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("a 64 TiB image with one block written costs %d bytes of heap", grew)
	}
	checkBytes(t, img, size-4096, data)
	checkBytes(t, img, 0, make([]byte, 8192))

	// Extent walks over unallocated leaves without visiting their chunks.
	allocated, n, err := img.Extent(0, size)
	if err != nil || allocated || n != size-memChunkSize {
		t.Fatalf("Extent(0) = %v, %d, %v; want false, %d", allocated, n, err, int64(size-memChunkSize))
	}
	allocated, n, err = img.Extent(size-memChunkSize, size)
	if err != nil || !allocated || n != memChunkSize {
		t.Fatalf("Extent(last chunk) = %v, %d, %v; want true, %d", allocated, n, err, memChunkSize)
	}
}

func TestMemoryImageDiscardFreesWholeChunks(t *testing.T) {
	// The last chunk is partial: discarding to the end frees it too.
	const size = 3*memChunkSize + 4096
	tests := []struct {
		name      string
		off, n    int64
		freed     []int64 // chunk indexes that must be freed
		allocated []int64 // chunk indexes that must stay
	}{
		{"whole chunk", memChunkSize, memChunkSize, []int64{1}, []int64{0, 2, 3}},
		{"partial chunk only zeroes", memChunkSize + 512, memChunkSize - 512, nil, []int64{0, 1, 2, 3}},
		{"partial last chunk to end", 3 * memChunkSize, 4096, []int64{3}, []int64{0, 1, 2}},
		{"everything", 0, size, []int64{0, 1, 2, 3}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := NewMemoryImage(size)
			defer img.Close()
			mustWrite(t, img, randomBytes(2, size), 0)
			if err := img.Discard(tc.off, tc.n); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			for _, idx := range tc.freed {
				if ok, _ := img.chunkAllocated(idx); ok {
					t.Errorf("chunk %d still allocated", idx)
				}
			}
			for _, idx := range tc.allocated {
				if ok, _ := img.chunkAllocated(idx); !ok {
					t.Errorf("chunk %d freed", idx)
				}
			}
			checkBytes(t, img, tc.off, make([]byte, tc.n))
		})
	}
}

func TestMemoryImageResizeAcrossLeaves(t *testing.T) {
	img := NewMemoryImage(memLeafBytes - 4096)
	defer img.Close()
	data := randomBytes(3, 8192)
	if err := img.Resize(2*memLeafBytes + 4096); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	mustWrite(t, img, data, memLeafBytes-4096) // straddles two leaves
	checkBytes(t, img, memLeafBytes-4096, data)
	mustWrite(t, img, data[:4096], 2*memLeafBytes)
	checkBytes(t, img, 2*memLeafBytes, data[:4096])
}

func TestNewMemoryImageRejectsNegativeSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewMemoryImage(-1) did not panic")
		}
	}()
	NewMemoryImage(-1)
}

func TestFillPattern(t *testing.T) {
	pattern := []byte("abcde")
	tests := []struct {
		n, phase int
		want     string
	}{
		{0, 0, ""},
		{3, 0, "abc"},
		{12, 0, "abcdeabcdeab"},
		{12, 2, "cdeabcdeabcd"},
		{2, 4, "ea"},
		{5, 4, "eabcd"},
	}
	for _, tc := range tests {
		dst := make([]byte, tc.n)
		fillPattern(dst, pattern, tc.phase)
		if string(dst) != tc.want {
			t.Errorf("fillPattern(%d, phase %d) = %q, want %q", tc.n, tc.phase, dst, tc.want)
		}
	}
}

func TestStripeSet(t *testing.T) {
	tests := []struct {
		first, last int64
		want        uint64
	}{
		{0, 0, 1},
		{3, 5, 0b111000},
		{63, 64, 1<<63 | 1},
		{10, 200, ^uint64(0)},
		{5, 4, 0},
	}
	for _, tc := range tests {
		if got := stripeSet(tc.first, tc.last); got != tc.want {
			t.Errorf("stripeSet(%d, %d) = %#x, want %#x", tc.first, tc.last, got, tc.want)
		}
	}
}

func TestMemoryImageExactExtents(t *testing.T) {
	img := NewMemoryImage(4*mib + 4096)
	defer img.Close()
	checkExactExtents(t, img)
}

func TestMemoryImageDoubleClose(t *testing.T) {
	img := NewMemoryImage(4096)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if err := img.Resize(8192); !errors.Is(err, ErrClosed) {
		t.Fatalf("Resize after Close: %v, want ErrClosed", err)
	}
	if _, _, err := img.Extent(0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Extent after Close: %v, want ErrClosed", err)
	}
}

func TestMemoryImageShrinkRefused(t *testing.T) {
	img := NewMemoryImage(8192)
	defer img.Close()
	if err := img.Resize(4096); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("shrink: %v, want ErrUnsupported", err)
	}
}
