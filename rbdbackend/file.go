package rbdbackend

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileOptions says how OpenFileImage opens its file.
type FileOptions struct {
	// Size, when positive, creates the file if it is missing and extends it
	// (sparsely) to Size bytes if it is shorter. A longer file keeps its
	// length: shrinking would lose data. Zero opens an existing file at its
	// current length.
	Size int64
	// Direct opens the file with O_DIRECT so I/O bypasses the page cache.
	// Requests that are not aligned to the file system's direct I/O
	// alignment go through aligned bounce buffers. The image size must be a
	// multiple of that alignment.
	Direct bool
	// ReadOnly refuses every write with ErrReadOnly.
	ReadOnly bool
}

// fileLockShift sets the size of the regions (1 MiB) a FileImage locks for
// writes; see FileImage.locks.
const fileLockShift = 20

// FileImage is an Image kept in a sparse regular file, read and written with
// pread/pwrite. Flush is fdatasync, Discard punches holes.
type FileImage struct {
	f        *os.File
	raw      syscall.RawConn
	path     string
	readOnly bool
	direct   bool
	// align is the offset and length granularity O_DIRECT needs (1 when
	// the file is not opened for direct I/O); memAlign the buffer address
	// granularity.
	align    int64
	memAlign uintptr
	size     atomic.Int64
	closed   atomic.Bool
	resizeMu sync.Mutex
	// locks guard 1 MiB regions. Writes hold their regions shared, so they
	// run in parallel with each other; CompareAndWrite, and the
	// read-modify-write of partial blocks under O_DIRECT, hold them
	// exclusively so no write can slip between their read and their write.
	// Reads take no lock.
	locks stripedLocks
}

var (
	_ Image              = (*FileImage)(nil)
	_ Flusher            = (*FileImage)(nil)
	_ Discarder          = (*FileImage)(nil)
	_ WriteSamer         = (*FileImage)(nil)
	_ CompareAndWriter   = (*FileImage)(nil)
	_ AllocationReporter = (*FileImage)(nil)
	_ Resizer            = (*FileImage)(nil)
	// FileImage is deliberately not an AtomicWriter: reads take no lock, so
	// a pread racing a pwrite can return part of it, and a crash may leave
	// a write torn at page or sector boundaries.
)

// OpenFileImage opens (or, with opts.Size > 0, creates) the image file at
// path.
func OpenFileImage(path string, opts FileOptions) (*FileImage, error) {
	if opts.Size < 0 {
		return nil, fmt.Errorf("rbdbackend: file image %s: negative size %d", path, opts.Size)
	}
	flags := os.O_RDWR
	switch {
	case opts.ReadOnly:
		flags = os.O_RDONLY
	case opts.Size > 0:
		flags |= os.O_CREATE
	}
	if opts.Direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rbdbackend: open file image: %w", err)
	}
	img, err := newFileImage(f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

func newFileImage(f *os.File, path string, opts FileOptions) (*FileImage, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("rbdbackend: file image %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("rbdbackend: file image %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("rbdbackend: file image %s: %w", path, err)
	}
	img := &FileImage{f: f, raw: raw, path: path, readOnly: opts.ReadOnly, direct: opts.Direct, align: 1, memAlign: 1}
	size := max(fi.Size(), opts.Size)
	if opts.Direct {
		if img.align, img.memAlign, err = directAlignment(raw); err != nil {
			return nil, fmt.Errorf("rbdbackend: file image %s: %w", path, err)
		}
		if size%img.align != 0 {
			return nil, fmt.Errorf("rbdbackend: file image %s: size %d is not a multiple of the %d-byte direct I/O alignment", path, size, img.align)
		}
	}
	if size > fi.Size() {
		if opts.ReadOnly {
			return nil, fmt.Errorf("rbdbackend: file image %s is %d bytes, %d wanted: %w", path, fi.Size(), size, ErrReadOnly)
		}
		if err := f.Truncate(size); err != nil {
			return nil, fmt.Errorf("rbdbackend: file image %s: extend: %w", path, err)
		}
	}
	img.size.Store(size)
	return img, nil
}

// Size returns the current size in bytes.
func (f *FileImage) Size() int64 { return f.size.Load() }

// ReadAt reads len(p) bytes at off.
func (f *FileImage) ReadAt(p []byte, off int64) (int, error) {
	if err := f.begin("read", off, int64(len(p)), false); err != nil || len(p) == 0 {
		return 0, err
	}
	if err := f.readAt(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteAt writes p at off.
func (f *FileImage) WriteAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if err := f.begin("write", off, n, true); err != nil || n == 0 {
		return 0, err
	}
	set, exclusive := f.writeLocks(off, n)
	f.lockRegions(set, exclusive)
	err := f.writeAtLocked(p, off)
	f.unlockRegions(set, exclusive)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush makes completed writes durable with fdatasync.
func (f *FileImage) Flush() error {
	if f.closed.Load() {
		return fmt.Errorf("rbdbackend: flush %s: %w", f.path, ErrClosed)
	}
	err := f.control(func(fd int) error {
		return retryEINTR(func() error { return unix.Fdatasync(fd) })
	})
	return f.wrapErr("flush", err)
}

// Discard punches a hole over [off, off+length). File systems that cannot
// punch holes get zeroes written instead.
func (f *FileImage) Discard(off, length int64) error {
	if err := f.begin("discard", off, length, true); err != nil || length == 0 {
		return err
	}
	set, exclusive := f.writeLocks(off, length)
	f.lockRegions(set, exclusive)
	err := f.control(func(fd int) error {
		return retryEINTR(func() error {
			return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
		})
	})
	f.unlockRegions(set, exclusive)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return f.writeSame(off, length, []byte{0})
	}
	return f.wrapErr("discard", err)
}

// WriteSame writes pattern repeatedly over [off, off+length); length must be
// a multiple of len(pattern).
func (f *FileImage) WriteSame(off, length int64, pattern []byte) error {
	if err := f.begin("write same", off, length, true); err != nil || length == 0 {
		return err
	}
	if err := checkPattern(length, pattern); err != nil {
		return err
	}
	return f.writeSame(off, length, pattern)
}

func (f *FileImage) writeSame(off, length int64, pattern []byte) error {
	plen := int64(len(pattern))
	var buf []byte
	if plen <= bounceSize {
		b := getBounce()
		defer putBounce(b)
		// A whole number of patterns keeps every piece in phase.
		buf = (*b)[:bounceSize/plen*plen]
		fillPattern(buf, pattern, 0)
	} else {
		buf = pattern
	}
	for pos, end := off, off+length; pos < end; {
		n := min(int64(len(buf)), end-pos)
		set, exclusive := f.writeLocks(pos, n)
		f.lockRegions(set, exclusive)
		err := f.writeAtLocked(buf[:n], pos)
		f.unlockRegions(set, exclusive)
		if err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// CompareAndWrite writes data at off only if the bytes there equal cmp,
// holding the range's regions exclusively from the read to the write.
func (f *FileImage) CompareAndWrite(off int64, cmp, data []byte) (int64, error) {
	if err := checkCompareLengths(cmp, data); err != nil {
		return 0, err
	}
	n := int64(len(cmp))
	if err := f.begin("compare and write", off, n, true); err != nil || n == 0 {
		return 0, err
	}
	lo, hi := f.alignOut(off, n)
	set := f.regionSet(lo, hi-lo)
	f.locks.lock(set)
	defer f.locks.unlock(set)

	cur := make([]byte, n)
	if err := f.readAt(cur, off); err != nil {
		return 0, err
	}
	if d := firstDifference(cmp, cur); d >= 0 {
		return int64(d), fmt.Errorf("%w at byte %d of %d", ErrMiscompare, d, n)
	}
	return 0, f.writeAtLocked(data, off)
}

// Extent reports holes and data with lseek(SEEK_DATA/SEEK_HOLE). File
// systems without hole tracking report the whole file as data.
func (f *FileImage) Extent(off, maxLength int64) (bool, int64, error) {
	if f.closed.Load() {
		return false, 0, fmt.Errorf("rbdbackend: extent %s: %w", f.path, ErrClosed)
	}
	size := f.size.Load()
	if maxLength < 0 || off < 0 || off > size {
		return false, 0, fmt.Errorf("rbdbackend: extent at %d on a %d-byte image: %w", off, size, ErrOutOfRange)
	}
	limit := min(maxLength, size-off)
	if limit == 0 {
		return false, 0, nil
	}
	var allocated bool
	var run int64
	err := f.control(func(fd int) error {
		data, err := lseek(fd, off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // no data from off to the end of file
			run = limit
			return nil
		case err != nil:
			return err
		case data > off:
			run = data - off
			return nil
		}
		hole, err := lseek(fd, off, unix.SEEK_HOLE)
		allocated, run = true, hole-off
		return err
	})
	if err != nil {
		return false, 0, f.wrapErr("extent", err)
	}
	return allocated, min(run, limit), nil
}

// Resize grows the file to size bytes (sparsely).
func (f *FileImage) Resize(size int64) error {
	if err := f.begin("resize", 0, 0, true); err != nil {
		return err
	}
	f.resizeMu.Lock()
	defer f.resizeMu.Unlock()
	cur := f.size.Load()
	switch {
	case size < cur:
		return fmt.Errorf("rbdbackend: resize %s from %d to %d bytes: shrinking: %w", f.path, cur, size, ErrUnsupported)
	case size == cur:
		return nil
	case size%f.align != 0:
		return fmt.Errorf("rbdbackend: resize %s to %d bytes: not a multiple of the %d-byte direct I/O alignment", f.path, size, f.align)
	}
	if err := f.f.Truncate(size); err != nil {
		return f.wrapErr("resize", err)
	}
	f.size.Store(size)
	return nil
}

// Close closes the file. Calls still in flight fail with ErrClosed.
func (f *FileImage) Close() error {
	if f.closed.Swap(true) {
		return fmt.Errorf("rbdbackend: close %s: %w", f.path, ErrClosed)
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("rbdbackend: close %s: %w", f.path, err)
	}
	return nil
}

func (f *FileImage) begin(op string, off, n int64, write bool) error {
	if f.closed.Load() {
		return fmt.Errorf("rbdbackend: %s %s: %w", op, f.path, ErrClosed)
	}
	if write && f.readOnly {
		return fmt.Errorf("rbdbackend: %s %s: %w", op, f.path, ErrReadOnly)
	}
	return checkIORange(op, off, n, f.size.Load())
}

// readAt reads without locking: a read racing a write may see either.
func (f *FileImage) readAt(p []byte, off int64) error {
	if f.needsBounce(p, off) {
		return f.readBounced(p, off)
	}
	return f.pread(p, off)
}

// writeAtLocked writes p at off; the caller holds the regions writeLocks
// names.
func (f *FileImage) writeAtLocked(p []byte, off int64) error {
	if f.needsBounce(p, off) {
		return f.writeBounced(p, off)
	}
	return f.pwrite(p, off)
}

func (f *FileImage) pread(p []byte, off int64) error {
	if _, err := f.f.ReadAt(p, off); err != nil {
		return f.wrapErr("read", err)
	}
	return nil
}

func (f *FileImage) pwrite(p []byte, off int64) error {
	if _, err := f.f.WriteAt(p, off); err != nil {
		return f.wrapErr("write", err)
	}
	return nil
}

// writeLocks names the regions a write of [off, off+n) must hold, and
// whether exclusively: only a direct write that must read-modify-write a
// partial block needs to keep other writers out of that block.
func (f *FileImage) writeLocks(off, n int64) (set uint64, exclusive bool) {
	lo, hi := f.alignOut(off, n)
	exclusive = lo != off || hi != off+n
	return f.regionSet(lo, hi-lo), exclusive
}

func (f *FileImage) regionSet(off, n int64) uint64 {
	return stripeSet(off>>fileLockShift, (off+n-1)>>fileLockShift)
}

func (f *FileImage) lockRegions(set uint64, exclusive bool) {
	if exclusive {
		f.locks.lock(set)
	} else {
		f.locks.rlock(set)
	}
}

func (f *FileImage) unlockRegions(set uint64, exclusive bool) {
	if exclusive {
		f.locks.unlock(set)
	} else {
		f.locks.runlock(set)
	}
}

// control runs fn with the file descriptor, which stays open meanwhile.
func (f *FileImage) control(fn func(fd int) error) error {
	var opErr error
	if err := f.raw.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

// wrapErr adds the operation and path, and turns the ways the os package
// reports a closed file or a read-only file system into our sentinels.
func (f *FileImage) wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case f.closed.Load() || errors.Is(err, os.ErrClosed):
		return fmt.Errorf("rbdbackend: %s %s: %w", op, f.path, ErrClosed)
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("rbdbackend: %s %s: %w (%w)", op, f.path, ErrReadOnly, err)
	case errors.Is(err, io.EOF):
		// Only if the file was truncated behind our back.
		return fmt.Errorf("rbdbackend: %s %s: file shorter than the image: %w", op, f.path, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("rbdbackend: %s %s: %w", op, f.path, err)
}

func lseek(fd int, off int64, whence int) (int64, error) {
	var pos int64
	err := retryEINTR(func() error {
		var err error
		pos, err = unix.Seek(fd, off, whence)
		return err
	})
	return pos, err
}

// retryEINTR repeats a system call the Go runtime's own signals (used for
// preemption) interrupted.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
