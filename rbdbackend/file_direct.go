package rbdbackend

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// bounceSize is the unit in which unaligned O_DIRECT I/O is copied
	// through an aligned buffer; a multiple of every supported alignment.
	bounceSize = 1 << 20
	// bounceAlign is the address alignment of bounce buffers (a page),
	// enough for every file system's O_DIRECT buffer rule.
	bounceAlign = 4096
	// fallbackDirectAlign is assumed when the kernel does not report the
	// direct I/O alignment (statx STATX_DIOALIGN, Linux 6.1+).
	fallbackDirectAlign = 4096
)

var bouncePool = sync.Pool{New: func() any {
	b := alignedBuffer(bounceSize, bounceAlign)
	return &b
}}

func getBounce() *[]byte  { return bouncePool.Get().(*[]byte) }
func putBounce(b *[]byte) { bouncePool.Put(b) }

// alignedBuffer returns n bytes starting at an address that is a multiple
// of align. Go's collector does not move heap objects, so it stays aligned.
func alignedBuffer(n, align int) []byte {
	b := make([]byte, n+align)
	skip := (align - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(align))) % align
	return b[skip : skip+n : skip+n]
}

// directAlignment asks the kernel how O_DIRECT I/O on the file must be
// aligned: offsets and lengths, and buffer addresses.
func directAlignment(raw syscall.RawConn) (int64, uintptr, error) {
	var stx unix.Statx_t
	var statErr error
	if err := raw.Control(func(fd uintptr) {
		statErr = unix.Statx(int(fd), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx)
	}); err != nil {
		return 0, 0, err
	}
	if statErr != nil || stx.Mask&unix.STATX_DIOALIGN == 0 {
		return fallbackDirectAlign, fallbackDirectAlign, nil
	}
	if stx.Dio_offset_align == 0 {
		return 0, 0, fmt.Errorf("file system does not support direct I/O: %w", ErrUnsupported)
	}
	off, mem := int64(stx.Dio_offset_align), uintptr(max(stx.Dio_mem_align, 1))
	if off&(off-1) != 0 || off > bounceSize || mem > bounceAlign {
		return 0, 0, errors.New("unsupported direct I/O alignment")
	}
	return off, mem, nil
}

// needsBounce reports whether p at off cannot go to the kernel as is.
func (f *FileImage) needsBounce(p []byte, off int64) bool {
	if !f.direct {
		return false
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return off%f.align != 0 || int64(len(p))%f.align != 0 || addr%f.memAlign != 0
}

// alignOut widens [off, off+n) to whole direct I/O blocks.
func (f *FileImage) alignOut(off, n int64) (lo, hi int64) {
	lo = off - off%f.align
	hi = off + n
	if r := hi % f.align; r != 0 {
		hi += f.align - r
	}
	return lo, hi
}

// readBounced reads the aligned blocks around [off, off+len(p)) through a
// bounce buffer and copies out the part asked for.
func (f *FileImage) readBounced(p []byte, off int64) error {
	b := getBounce()
	defer putBounce(b)
	end := off + int64(len(p))
	lo, hi := f.alignOut(off, int64(len(p)))
	for w := lo; w < hi; {
		win := (*b)[:min(bounceSize, hi-w)]
		if err := f.pread(win, w); err != nil {
			return err
		}
		from, to := max(w, off), min(w+int64(len(win)), end)
		copy(p[from-off:to-off], win[from-w:to-w])
		w += int64(len(win))
	}
	return nil
}

// writeBounced writes [off, off+len(p)) in aligned windows. A window whose
// first or last block is only partly covered first reads that block, so
// the bytes around the request are written back unchanged; the caller holds
// those blocks' regions exclusively.
func (f *FileImage) writeBounced(p []byte, off int64) error {
	b := getBounce()
	defer putBounce(b)
	end := off + int64(len(p))
	lo, hi := f.alignOut(off, int64(len(p)))
	for w := lo; w < hi; {
		win := (*b)[:min(bounceSize, hi-w)]
		wend := w + int64(len(win))
		from, to := max(w, off), min(wend, end)
		if from > w {
			if err := f.pread(win[:f.align], w); err != nil {
				return err
			}
		}
		if to < wend && (from == w || wend-w > f.align) {
			if err := f.pread(win[int64(len(win))-f.align:], wend-f.align); err != nil {
				return err
			}
		}
		copy(win[from-w:to-w], p[from-off:to-off])
		if err := f.pwrite(win, w); err != nil {
			return err
		}
		w = wend
	}
	return nil
}
