package iscsi

import (
	"encoding/binary"
	"sync"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// Payloads read straight into their command's buffer. Copying every
// Data-Out payload from a pooled PDU buffer into the command buffer costs a
// pass over all written data; instead the reader goroutine, once it has a
// Data-Out header, asks the sink where the payload belongs and reads it
// there.
//
// The serve loop opens a window for each R2T before sending it and closes
// it when the R2T's data is complete or the command ends. The reader
// stores a payload in a window only when its TTT, ITT and buffer offset
// are exactly the next expected ones, so it never lands on data already
// accepted; every other Data-Out is read into a pooled buffer as before.
// The serve loop still checks each Data-Out (DataSN, offsets, F bit) and
// finds a stored payload already in place.
type dataSink struct {
	mu   sync.Mutex
	wins map[uint32]*sinkWindow // by TTT (unique within the connection)
	// free holds windows closed while the reader was not filling them:
	// nobody refers to those any more.
	free []*sinkWindow
}

// sinkWindow is the part of a command buffer one R2T asked for.
type sinkWindow struct {
	itt    uint32
	offset uint32 // the R2T's buffer offset
	dst    []byte // the R2T's part of the command buffer
	stored uint32 // bytes stored so far, from the start of dst
	// filling: the reader is reading into dst right now. A window closed
	// meanwhile leaves a buffer that must not be reused.
	filling bool
}

// open makes the window of an R2T; dst is its part of the command buffer.
func (s *dataSink) open(ttt, itt, offset uint32, dst []byte) {
	s.mu.Lock()
	if s.wins == nil {
		s.wins = make(map[uint32]*sinkWindow)
	}
	var w *sinkWindow
	if n := len(s.free); n > 0 {
		w = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
	} else {
		w = new(sinkWindow)
	}
	*w = sinkWindow{itt: itt, offset: offset, dst: dst}
	s.wins[ttt] = w
	s.mu.Unlock()
}

// close removes a window. It reports false when the reader is still
// filling it: the buffer behind it must then not go back to the pool.
func (s *dataSink) close(ttt uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wins[ttt]
	if w == nil {
		return true
	}
	delete(s.wins, ttt)
	if w.filling {
		return false // the reader holds w until it calls stored
	}
	*w = sinkWindow{}
	s.free = append(s.free, w)
	return true
}

// claim returns where the payload of the Data-Out header bhs goes, or nil
// when it is not the next one its window expects. A claimed window must be
// released with stored.
func (s *dataSink) claim(bhs *pdu.BHS) (*sinkWindow, []byte) {
	n := uint64(bhs.DataSegmentLength())
	if n == 0 || bhs.Opcode() != pdu.OpDataOut {
		return nil, nil
	}
	ttt := binary.BigEndian.Uint32(bhs[20:24])
	off := binary.BigEndian.Uint32(bhs[40:44])
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wins[ttt]
	if w == nil || w.filling || w.itt != bhs.ITT() ||
		uint64(off) != uint64(w.offset)+uint64(w.stored) || uint64(w.stored)+n > uint64(len(w.dst)) {
		return nil, nil
	}
	w.filling = true
	return w, w.dst[w.stored : uint64(w.stored)+n]
}

// stored releases a claimed window; ok says the payload arrived intact.
func (s *dataSink) stored(w *sinkWindow, n int, ok bool) {
	s.mu.Lock()
	w.filling = false
	if ok {
		w.stored += uint32(n)
	}
	s.mu.Unlock()
}

// readPDU reads the next PDU for the serve loop, putting a Data-Out payload
// into its window when the sink has one for it, and the immediate data of
// a WRITE into a command-sized buffer the task can adopt.
func (c *conn) readPDU() rxItem {
	p, _ := rxPDUs.Get().(*pdu.PDU)
	if p == nil {
		p = new(pdu.PDU)
	}
	if err := c.rd.ReadHeader(p); err != nil {
		return rxItem{err: err}
	}
	if w, dst := c.ffp.sink.claim(&p.BHS); w != nil {
		err := c.rd.ReadDataInto(p, dst)
		c.ffp.sink.stored(w, len(dst), err == nil)
		return rxItem{p: p, err: err}
	}
	if buf := immediateBuffer(&p.BHS); buf != nil {
		err := c.rd.ReadDataInto(p, (*buf)[:p.BHS.DataSegmentLength()])
		if err != nil && !isDataDigestError(err) {
			putWriteBuf(buf)
			return rxItem{err: err}
		}
		return rxItem{p: p, err: err, buf: buf}
	}
	if err := c.rd.ReadData(p); err != nil {
		return rxItem{err: err}
	}
	return rxItem{p: p}
}

// rxPDUs pools the PDU structs the reader fills. The serve loop gives a
// SCSI Command or Data-Out back once handled (recycleRx): nothing keeps
// those PDUs, unlike a NOP-Out whose data a NOP-In echoes, a request
// parked for its CmdSN turn, or a PDU a digest error holds, which are
// left to the garbage collector.
var rxPDUs sync.Pool

// recycleRx releases p's data and gives p back for the reader to reuse.
func recycleRx(p *pdu.PDU) {
	p.Release()
	*p = pdu.PDU{}
	rxPDUs.Put(p)
}

// maxImmediateAdopt bounds the buffer the reader takes for a WRITE with
// immediate data before the serve loop has seen the command: commands
// queued for the loop hold at most this much each, and at most
// immediateAdoptRatio times the data that arrived.
const (
	maxImmediateAdopt   = 1 << 20
	immediateAdoptRatio = 4
)

// immediateBuffer returns a buffer for the whole Data-Out of a SCSI
// Command with the W bit and immediate data, or nil.
func immediateBuffer(bhs *pdu.BHS) *[]byte {
	n := bhs.DataSegmentLength()
	edtl := binary.BigEndian.Uint32(bhs[20:24])
	if n == 0 || bhs.Opcode() != pdu.OpSCSICommand || bhs[1]&0x20 == 0 ||
		uint64(n) > uint64(edtl) || edtl > maxImmediateAdopt || uint64(edtl) > immediateAdoptRatio*uint64(n) {
		return nil
	}
	return getWriteBuf(int(edtl))
}

// syncWindows closes the windows of t's R2Ts that are no longer
// outstanding.
func (c *conn) syncWindows(t *task) {
	kept := t.windows[:0]
	for _, ttt := range t.windows {
		if t.findR2T(ttt) >= 0 {
			kept = append(kept, ttt)
		} else if !c.ffp.sink.close(ttt) {
			t.bufLost = true
		}
	}
	t.windows = kept
}

// closeWindows closes every window of t.
func (c *conn) closeWindows(t *task) {
	for _, ttt := range t.windows {
		if !c.ffp.sink.close(ttt) {
			t.bufLost = true
		}
	}
	t.windows = t.windows[:0]
}

// dropBuf releases t's command buffer: back to the pool unless the reader
// may still be writing into it.
func (c *conn) dropBuf(t *task) {
	c.closeWindows(t)
	t.releaseBuf()
}
