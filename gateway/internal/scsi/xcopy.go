package scsi

import (
	"errors"
	"math/bits"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18): the copy
// manager copies between the logical units the I_T nexus of the command
// sees through its target, named by their NAA designator in identification
// descriptor target descriptors (E4h). A logical unit of another target,
// or one masked from the nexus, is unreachable like an unknown one (as in
// Linux LIO since CVE-2020-28374: a copy must not reach a device its
// initiator cannot address).

// Copy manager limits (RECEIVE COPY OPERATING PARAMETERS).
const (
	xcopyMaxTargetDescs    = 2
	xcopyMaxSegmentDescs   = 16
	xcopyMaxDescListLen    = 1024
	xcopyTotalConcurrent   = 64
	xcopyHeaderLen         = 16
	xcopyTargetDescLen     = 32
	xcopySegmentB2BLen     = 28
	xcopyChunk             = 1 << 20
	xcopyMaxHeldResults    = 32
	descTypeBlockToBlock   = 0x02
	descTypeIdentification = 0xe4
)

// LIST ID USAGE values of the parameter list header.
const (
	listIDHold      = 0 // hold results for RECEIVE COPY RESULTS
	listIDReserved  = 1
	listIDNoHold    = 2 // do not hold results; the list identifier is unique
	listIDNotUnique = 3 // do not hold results; the list identifier is not used
)

// copyTarget is a parsed identification target descriptor.
type copyTarget struct {
	offset    int // in the parameter list, for field pointers
	designtr  []byte
	desigType byte
	blockLen  uint32
}

// copySegment is a parsed block-to-block segment descriptor.
type copySegment struct {
	offset         int
	src, dst       uint16
	blocks         uint64
	dstCount       bool // DC: blocks are counted in destination blocks
	srcLBA, dstLBA uint64
}

// copyResult is what RECEIVE COPY RESULTS reports about one list identifier.
type copyResult struct {
	seq        uint64
	inProgress bool
	segments   uint16
	bytes      uint64
	sense      []byte // fixed-format sense of a failed copy
}

// copyResults are the copy operations of one I_T nexus. Guarded by LU.mu.
type copyResults struct {
	seq     uint64
	byList  map[uint8]*copyResult
	running map[uint8]bool
}

// cmdExtendedCopy is EXTENDED COPY(LID1).
func cmdExtendedCopy(t *task) ([]byte, error) {
	plen := uint64(be32(t.cdb[10:14]))
	if plen == 0 {
		return nil, nil
	}
	if plen < xcopyHeaderLen {
		return nil, errParamListLength()
	}
	param, err := t.dataOut(plen)
	if err != nil {
		return nil, err
	}
	listID, usage := param[0], param[1]>>3&0x03
	if usage == listIDReserved {
		return nil, invalidParam(1, 4)
	}
	if param[1]&0x20 != 0 { // STR: sequential striped is not supported
		return nil, invalidParam(1, 5)
	}
	targets, segments, err := parseCopyLists(param)
	if err != nil {
		return nil, err
	}
	res, err := t.startCopy(listID, usage)
	if err != nil {
		return nil, err
	}
	copyErr := t.runCopy(targets, segments, res)
	t.finishCopy(listID, usage, res, copyErr)
	return nil, copyErr
}

// parseCopyLists validates the parameter list header and descriptors.
func parseCopyLists(param []byte) ([]copyTarget, []copySegment, error) {
	tdl := uint64(be16(param[2:4]))
	sdl := uint64(be32(param[8:12]))
	inl := uint64(be32(param[12:16]))
	if tdl+sdl > xcopyMaxDescListLen {
		return nil, nil, errParamListLength()
	}
	if xcopyHeaderLen+tdl+sdl+inl > uint64(len(param)) {
		return nil, nil, errParamListLength()
	}
	if inl != 0 {
		return nil, nil, invalidParam(12, -1) // MAXIMUM INLINE DATA LENGTH is zero
	}
	var targets []copyTarget
	for off := xcopyHeaderLen; off < xcopyHeaderLen+int(tdl); off += xcopyTargetDescLen {
		if len(targets) == xcopyMaxTargetDescs {
			return nil, nil, paramSense(ascTooManyTargetDescriptors, 2)
		}
		if param[off] != descTypeIdentification {
			return nil, nil, paramSense(ascUnsupportedTargetDescType, off)
		}
		if off+xcopyTargetDescLen > xcopyHeaderLen+int(tdl) {
			return nil, nil, errParamListLength()
		}
		d := param[off : off+xcopyTargetDescLen]
		// LU ID TYPE and NUL are ignored (SPC-4); only block devices.
		if d[1]&0x1f != peripheralDisk {
			return nil, nil, invalidParam(off+1, 4)
		}
		n := int(d[7])
		if n > 20 {
			return nil, nil, invalidParam(off+7, -1)
		}
		targets = append(targets, copyTarget{
			offset: off, desigType: d[5] & 0x0f, designtr: d[8 : 8+n], blockLen: be24(d[29:32]),
		})
	}
	var segments []copySegment
	end := xcopyHeaderLen + int(tdl) + int(sdl)
	for off := xcopyHeaderLen + int(tdl); off < end; {
		if len(segments) == xcopyMaxSegmentDescs {
			return nil, nil, paramSense(ascTooManySegmentDescriptors, 8)
		}
		if end-off < 4 {
			return nil, nil, errParamListLength()
		}
		if param[off] != descTypeBlockToBlock {
			return nil, nil, paramSense(ascUnsupportedSegmentDescType, off)
		}
		if int(be16(param[off+2:off+4]))+4 != xcopySegmentB2BLen {
			return nil, nil, invalidParam(off+2, -1)
		}
		if end-off < xcopySegmentB2BLen {
			return nil, nil, errParamListLength()
		}
		d := param[off : off+xcopySegmentB2BLen]
		segments = append(segments, copySegment{
			offset: off, src: be16(d[4:6]), dst: be16(d[6:8]), blocks: uint64(be16(d[10:12])),
			dstCount: d[1]&0x02 != 0, srcLBA: be64(d[12:20]), dstLBA: be64(d[20:28]),
		})
		off += xcopySegmentB2BLen
	}
	return targets, segments, nil
}

// copyAborted is COPY ABORTED sense with the given code.
func copyAborted(code asc) *senseError { return newSense(senseCopyAborted, code) }

// resolvedSegment is a segment with its logical units and byte ranges.
type resolvedSegment struct {
	src, dst       *LU
	srcOff, dstOff int64
	length         int64
}

// runCopy resolves and checks every segment, then copies them in order.
func (t *task) runCopy(targets []copyTarget, segments []copySegment, res *copyResult) error {
	resolved := make([]resolvedSegment, 0, len(segments))
	for _, s := range segments {
		r, err := t.resolveSegment(targets, s)
		if err != nil {
			return err
		}
		resolved = append(resolved, r)
	}
	for _, r := range resolved {
		if err := t.copySegment(r, res); err != nil {
			return err
		}
		t.lu.mu.Lock()
		res.segments++
		t.lu.mu.Unlock()
	}
	return nil
}

// resolveSegment finds the logical units of a segment and checks ranges,
// write protection and reservations before anything is copied.
func (t *task) resolveSegment(targets []copyTarget, s copySegment) (resolvedSegment, error) {
	if int(s.src) >= len(targets) || int(s.dst) >= len(targets) {
		return resolvedSegment{}, copyAborted(ascCopyTargetUnreachable)
	}
	src, err := t.resolve(targets[s.src])
	if err != nil {
		return resolvedSegment{}, err
	}
	dst, err := t.resolve(targets[s.dst])
	if err != nil {
		return resolvedSegment{}, err
	}
	sbs, dbs := uint64(src.cfg.BlockSize), uint64(dst.cfg.BlockSize)
	length := s.blocks * sbs
	if s.dstCount {
		length = s.blocks * dbs
	}
	if length%sbs != 0 || length%dbs != 0 {
		return resolvedSegment{}, invalidParam(s.offset+10, -1)
	}
	// A source too short to supply the segment is a data underrun of
	// that copy target. A destination too short is answered COPY TARGET
	// DEVICE NOT REACHABLE rather than DATA OVERRUN (0Dh/05h): initiators
	// (libiscsi's conformance tests among them) take only 00h/00h,
	// 08h/04h and 0Dh/02h with COPY ABORTED.
	if (blockRange{lba: s.srcLBA, blocks: length / sbs}).check(src.Blocks()) != nil {
		return resolvedSegment{}, copyAborted(ascCopyTargetDataUnderrun)
	}
	if (blockRange{lba: s.dstLBA, blocks: length / dbs}).check(dst.Blocks()) != nil {
		return resolvedSegment{}, copyAborted(ascCopyTargetNotReachable)
	}
	if err := dst.writeProtected(); err != nil {
		return resolvedSegment{}, err
	}
	if err := t.checkOtherLU(src, pr.AccessRead); err != nil {
		return resolvedSegment{}, err
	}
	if err := t.checkOtherLU(dst, pr.AccessWrite); err != nil {
		return resolvedSegment{}, err
	}
	return resolvedSegment{src: src, dst: dst, srcOff: int64(s.srcLBA * sbs), dstOff: int64(s.dstLBA * dbs), length: int64(length)}, nil
}

// resolve finds the logical unit a target descriptor names among those the
// I_T nexus of the command sees.
func (t *task) resolve(c copyTarget) (*LU, error) {
	if c.desigType != desigNAA || len(c.designtr) != 16 {
		return nil, copyAborted(ascCopyTargetNotReachable)
	}
	var lu *LU
	for _, v := range t.tgt.visible(t.nexus) {
		if [16]byte(c.designtr) == v.naa && !v.closed.Load() {
			lu = v
			break
		}
	}
	if lu == nil {
		return nil, copyAborted(ascCopyTargetNotReachable)
	}
	if c.blockLen != 0 && c.blockLen != lu.cfg.BlockSize {
		return nil, invalidParam(c.offset+29, -1)
	}
	return lu, nil
}

// checkOtherLU applies the reservation rules of a logical unit other than
// the one that received the command, on behalf of the same I_T nexus.
func (t *task) checkOtherLU(lu *LU, a pr.Access) error {
	if lu == t.lu {
		return nil
	}
	conflict, err := lu.pr.Conflict(t.ctx, portOf(t.nexus), a)
	if err != nil {
		return senseFromReservationStore(err)
	}
	if conflict {
		return errReservationConflict
	}
	return nil
}

// copySegment copies one segment in chunks. When the destination overlaps
// the end of the source on the same logical unit the chunks are copied from
// the end, so that no source block is overwritten before it was read.
func (t *task) copySegment(r resolvedSegment, res *copyResult) error {
	buf := make([]byte, min(r.length, xcopyChunk))
	backwards := r.src == r.dst && r.dstOff > r.srcOff && r.dstOff < r.srcOff+r.length
	for done := int64(0); done < r.length; {
		n := min(int64(len(buf)), r.length-done)
		at := done
		if backwards {
			at = r.length - done - n
		}
		if err := readImage(t.ctx, r.src.img, buf[:n], r.srcOff+at); err != nil {
			return asCopyAborted(err)
		}
		if err := writeImage(t.ctx, r.dst.img, buf[:n], r.dstOff+at); err != nil {
			return asCopyAborted(err)
		}
		done += n
		t.lu.mu.Lock()
		res.bytes += uint64(n)
		t.lu.mu.Unlock()
	}
	if r.dst.needsFlush(false) {
		return asCopyAborted(r.dst.flush())
	}
	return nil
}

// asCopyAborted reports a failure of the copy itself with the COPY ABORTED
// sense key (SPC-4 6.4.3); aborts pass through.
func asCopyAborted(err error) error {
	var se *senseError
	if errors.As(err, &se) {
		c := *se
		c.key = senseCopyAborted
		return &c
	}
	return err
}

// startCopy registers the copy operation of the list identifier.
func (t *task) startCopy(listID, usage byte) (*copyResult, error) {
	lu := t.lu
	lu.mu.Lock()
	defer lu.mu.Unlock()
	c := &lu.nexusLocked(t.nexus).copies
	if c.byList == nil {
		c.byList = make(map[uint8]*copyResult)
		c.running = make(map[uint8]bool)
	}
	if usage != listIDNotUnique {
		if c.running[listID] {
			return nil, newSense(senseIllegalRequest, ascOperationInProgress)
		}
		c.running[listID] = true
	}
	c.seq++
	res := &copyResult{seq: c.seq, inProgress: true}
	if usage == listIDHold {
		c.byList[listID] = res
		c.evictLocked()
	}
	return res, nil
}

// finishCopy records the outcome of the copy operation.
func (t *task) finishCopy(listID, usage byte, res *copyResult, err error) {
	lu := t.lu
	lu.mu.Lock()
	defer lu.mu.Unlock()
	res.inProgress = false
	var se *senseError
	if errors.As(err, &se) {
		res.sense = se.encode(false)
	} else if err != nil {
		res.sense = newSense(senseCopyAborted, ascNone).encode(false)
	}
	if nx := lu.nexuses[t.nexus.Key()]; nx != nil && usage != listIDNotUnique {
		delete(nx.copies.running, listID)
	}
}

// evictLocked drops the oldest held results beyond xcopyMaxHeldResults.
func (c *copyResults) evictLocked() {
	for len(c.byList) > xcopyMaxHeldResults {
		var oldest uint8
		var seq uint64
		first := true
		for id, r := range c.byList {
			if !r.inProgress && (first || r.seq < seq) {
				oldest, seq, first = id, r.seq, false
			}
		}
		if first {
			return
		}
		delete(c.byList, oldest)
	}
}

// heldResult returns a snapshot of the held result of a list identifier.
func (t *task) heldResult() (copyResult, error) {
	lu := t.lu
	lu.mu.Lock()
	defer lu.mu.Unlock()
	r := lu.nexusLocked(t.nexus).copies.byList[t.cdb[2]]
	if r == nil {
		return copyResult{}, invalidCDB(2, -1)
	}
	return *r, nil
}

// cmdCopyStatus is RECEIVE COPY STATUS(LID1) (SPC-4 6.18.4).
func cmdCopyStatus(t *task) ([]byte, error) {
	r, err := t.heldResult()
	if err != nil {
		return nil, err
	}
	data := make([]byte, 12)
	put32(data[0:4], 8)
	switch {
	case r.inProgress:
		data[4] = 0x02 // operation in progress, foreground
	case r.sense != nil:
		data[4] = 0x01 // completed with errors
	}
	put16(data[5:7], r.segments)
	// TRANSFER COUNT UNITS: bytes, or kibibytes (F1h), mebibytes (F2h)...
	count, units := r.bytes, byte(0x00)
	for u := byte(0xf1); count > 0xffffffff; u++ {
		count, units = count>>10, u
	}
	data[7] = units
	put32(data[8:12], uint32(count))
	return cut(data, be32(t.cdb[10:14])), nil
}

// cmdCopyFailureDetails is RECEIVE COPY FAILURE DETAILS(LID1) (SPC-4
// 6.18.3): the status and sense data of a held copy operation.
func cmdCopyFailureDetails(t *task) ([]byte, error) {
	r, err := t.heldResult()
	if err != nil {
		return nil, err
	}
	if r.inProgress {
		return nil, newSense(senseIllegalRequest, ascOperationInProgress)
	}
	data := make([]byte, 60, 60+len(r.sense))
	if r.sense != nil {
		data[56] = byte(StatusCheckCondition)
		put16(data[58:60], uint16(len(r.sense)))
		data = append(data, r.sense...)
	}
	put32(data[0:4], uint32(len(data)-4))
	return cut(data, be32(t.cdb[10:14])), nil
}

// cmdCopyOperatingParameters is RECEIVE COPY OPERATING PARAMETERS (SPC-4
// 6.18.5).
func cmdCopyOperatingParameters(t *task) ([]byte, error) {
	descTypes := []byte{descTypeBlockToBlock, descTypeIdentification}
	data := make([]byte, 44, 44+len(descTypes))
	data[4] = 0x01 // SNLID: LIST ID USAGE 11b is supported
	put16(data[8:10], xcopyMaxTargetDescs)
	put16(data[10:12], xcopyMaxSegmentDescs)
	put32(data[12:16], xcopyMaxDescListLen)
	put32(data[16:20], 0xffff*t.lu.cfg.BlockSize) // MAXIMUM SEGMENT LENGTH
	put16(data[34:36], xcopyTotalConcurrent)
	data[36] = xcopyTotalConcurrent
	data[37] = byte(bits.TrailingZeros32(t.lu.cfg.BlockSize)) // DATA SEGMENT GRANULARITY (log2)
	data[43] = byte(len(descTypes))
	data = append(data, descTypes...)
	put32(data[0:4], uint32(len(data)-4))
	return cut(data, be32(t.cdb[10:14])), nil
}

// Third-party copy descriptor types of VPD page 8Fh (SPC-4 7.8.17).
const (
	tpcSupportedCommands    = 0x0001
	tpcSupportedDescriptors = 0x0004
	tpcParameterData        = 0x0008
)

// vpdThirdParty is the Third-party Copy page: the LID1 copy commands, the
// descriptors and the limits.
func vpdThirdParty(*task) []byte {
	p := vpdHeader(vpdThirdPartyCopy)
	cmds := []byte{
		opThirdPartyCopyOut, 1, byte(saExtendedCopyLID1),
		opThirdPartyCopyIn, 3, byte(saCopyStatusLID1), byte(saCopyOpParams), byte(saCopyFailedSegments),
	}
	p = append(p, tpcDescriptor(tpcSupportedCommands, append([]byte{byte(len(cmds))}, cmds...))...)
	p = append(p, tpcDescriptor(tpcSupportedDescriptors, []byte{2, descTypeBlockToBlock, descTypeIdentification})...)
	params := make([]byte, 28)
	put16(params[4:6], xcopyMaxTargetDescs)
	put16(params[6:8], xcopyMaxSegmentDescs)
	put32(params[8:12], xcopyMaxDescListLen)
	p = append(p, tpcDescriptor(tpcParameterData, params)...)
	return vpdFinish(p)
}

// tpcDescriptor encodes a third-party copy descriptor, padded to a multiple
// of four bytes.
func tpcDescriptor(typ uint16, body []byte) []byte {
	n := len(body) + (4-len(body)%4)%4
	d := make([]byte, 4+n)
	put16(d[0:2], typ)
	put16(d[2:4], uint16(n))
	copy(d[4:], body)
	return d
}
