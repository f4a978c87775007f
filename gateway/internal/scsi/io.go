package scsi

import (
	"bytes"
	"context"
	"errors"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Backend access helpers shared by the media commands. Offsets are checked
// against the capacity before any of them runs.

// readAt fills buf from byte offset off. An aborted task returns at once
// (rbdbackend.ReadAtContext). A read changes nothing, and buf belongs to
// this command only, so a late completion is harmless.
func (t *task) readAt(buf []byte, off int64) error {
	return readImage(t.ctx, t.lu.img, buf, off)
}

func readImage(ctx context.Context, img rbdbackend.Image, buf []byte, off int64) error {
	if _, err := rbdbackend.ReadAtContext(ctx, img, buf, off); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return senseFromBackend(err, ioRead)
	}
	return nil
}

// readBlocks reads n blocks from lba into a new buffer.
func (t *task) readBlocks(lba, n uint64) ([]byte, error) {
	bs := uint64(t.lu.cfg.BlockSize)
	buf := make([]byte, n*bs)
	if err := t.readAt(buf, int64(lba*bs)); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeAt writes p at byte offset off. Writes are not abandoned once
// started: task management waits for them, so that no aborted task changes
// the medium after the abort was answered.
func (t *task) writeAt(p []byte, off int64) error {
	return writeImage(t.ctx, t.lu.img, p, off)
}

func writeImage(ctx context.Context, img rbdbackend.Image, p []byte, off int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := img.WriteAt(p, off); err != nil {
		return senseFromBackend(err, ioWrite)
	}
	return nil
}

// afterWrite makes a completed write durable when the initiator asked for
// it (FUA) or when the write cache is disabled (caching page WCE=0).
func (t *task) afterWrite(fua bool) error {
	if t.lu.needsFlush(fua) {
		return t.lu.flush()
	}
	return nil
}

// needsFlush reports whether a write must be durable before it completes:
// the initiator asked for it (FUA) or the write cache is disabled.
func (lu *LU) needsFlush(fua bool) bool {
	return fua || lu.modeFlags.Load()&modeWCE == 0
}

// flush makes completed writes durable (no-op for images without a cache).
func (lu *LU) flush() error {
	if lu.flusher == nil {
		return nil
	}
	if err := lu.flusher.Flush(); err != nil {
		return senseFromBackend(err, ioWrite)
	}
	return nil
}

// miscompareAt is MISCOMPARE DURING VERIFY OPERATION with the offset of the
// first differing byte in the INFORMATION field.
func miscompareAt(offset uint64) *senseError {
	return newSense(senseMiscompare, ascMiscompareDuringVerify).withInfo(offset)
}

// firstDifference returns the offset of the first byte where a and b
// differ, or -1 when they are equal.
func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// compareAndWrite writes data over cmp at off if the medium still holds cmp.
// It uses the backend's atomic compare-and-write when the range is within
// what the logical unit advertises for it; otherwise it reads, compares and
// writes under rmwMu, which is atomic against other compare-and-write and
// ORWRITE commands of this gateway. It returns the offset of the first
// differing byte on a miscompare.
func (t *task) compareAndWrite(off int64, cmp, data []byte, useBackend bool) (mismatch int, err error) {
	if useBackend && t.lu.caw != nil {
		if err := t.ctx.Err(); err != nil {
			return -1, err
		}
		m, err := t.lu.caw.CompareAndWrite(off, cmp, data)
		if errors.Is(err, rbdbackend.ErrMiscompare) {
			return int(m), nil
		}
		if err != nil {
			return -1, senseFromBackend(err, ioWrite)
		}
		return -1, nil
	}
	t.lu.rmwMu.Lock()
	defer t.lu.rmwMu.Unlock()
	cur := make([]byte, len(cmp))
	if err := t.readAt(cur, off); err != nil {
		return -1, err
	}
	if i := firstDifference(cmp, cur); i >= 0 {
		return i, nil
	}
	return -1, t.writeAt(data, off)
}
