package iscsi

import (
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// task is one SCSI command from its arrival to its response. It is owned
// by the serve loop; while the SCSI layer runs it (running), its goroutine
// only reads cmd.
type task struct {
	itt       uint32
	cmdSN     uint32
	immediate bool
	rawLUN    uint64
	edtl      uint32
	read      bool
	write     bool
	cmd       scsi.Command

	// Data-Out bookkeeping. xfer is how much Data-Out the command takes:
	// min(EDTL, what the CDB asks for). Data the initiator sends beyond it
	// (an underflow) is read and dropped.
	buf         *[]byte
	xfer        uint32
	unsolOpen   bool   // unsolicited Data-Out is still expected
	unsolEnd    uint32 // min(EDTL, FirstBurstLength)
	unsolNext   uint32 // next unsolicited offset (after immediate data)
	unsolDataSN uint32
	r2tNext     uint32 // next offset to solicit
	r2tSN       uint32
	r2ts        []r2tState

	// Residual of a command that moves Data-Out, fixed at arrival.
	outResidual residual

	admitted  bool   // its CmdSN turn came (or it is immediate)
	running   bool   // handed to the SCSI layer
	failSense []byte // answer CHECK CONDITION with this instead of executing
	tmfs      []*tmfOp
}

// r2tState is one outstanding R2T.
type r2tState struct {
	ttt, offset, length, received, dataSN uint32
}

// residual is the O/U flag pair and count of a response.
type residual struct {
	over, under bool
	count       uint32
}

func compareLengths(actual, expected uint64) residual {
	switch {
	case actual > expected:
		return residual{over: true, count: uint32(min(actual-expected, 1<<32-1))}
	case actual < expected:
		return residual{under: true, count: uint32(expected - actual)}
	}
	return residual{}
}

// movesDataOut reports whether the residual comes from the Data-Out side.
func (t *task) movesDataOut() bool {
	return t.write || t.outResidual != residual{}
}

// dataInResidual is the residual of a command that produced dataLen bytes.
func (t *task) dataInResidual(dataLen int) residual {
	if t.movesDataOut() {
		return t.outResidual
	}
	expected := uint64(0)
	if t.read {
		expected = uint64(t.edtl)
	}
	return compareLengths(uint64(dataLen), expected)
}

// expectsData reports whether Data-Out may still arrive for the task.
func (t *task) expectsData() bool { return t.unsolOpen || len(t.r2ts) > 0 }

// store copies Data-Out at off into the command buffer, dropping what lies
// beyond xfer.
func (t *task) store(off uint32, data []byte) {
	if off >= t.xfer || t.buf == nil {
		return
	}
	end := min(uint64(off)+uint64(len(data)), uint64(t.xfer))
	copy((*t.buf)[off:end], data)
}

func (t *task) findR2T(ttt uint32) int {
	for i := range t.r2ts {
		if t.r2ts[i].ttt == ttt {
			return i
		}
	}
	return -1
}

// dataOutVerdict is what a Data-Out PDU deserves.
type dataOutVerdict uint8

const (
	dataOutOK       dataOutVerdict = iota
	dataOutBadTag                  // no such R2T: Reject (invalid PDU field), carry on
	dataOutSequence                // DataSN/offset/length broken: at ERL 0 the connection goes
)

// acceptDataOut validates a Data-Out PDU against the unsolicited burst or
// the R2T it answers (DataPDUInOrder and DataSequenceInOrder are Yes) and
// stores its payload.
func (t *task) acceptDataOut(d *pdu.DataOut) (dataOutVerdict, string) {
	n := uint64(len(d.Data))
	off := uint64(d.BufferOffset)
	if d.TTT == reservedTag {
		switch {
		case !t.unsolOpen:
			return dataOutSequence, "unsolicited Data-Out not expected"
		case d.DataSN != t.unsolDataSN:
			return dataOutSequence, "unsolicited DataSN out of order"
		case d.BufferOffset != t.unsolNext:
			return dataOutSequence, "unsolicited BufferOffset out of order"
		case off+n > uint64(t.unsolEnd):
			return dataOutSequence, "unsolicited data beyond FirstBurstLength or EDTL"
		}
		t.store(d.BufferOffset, d.Data)
		t.unsolNext = uint32(off + n)
		t.unsolDataSN++
		if d.Final || t.unsolNext == t.unsolEnd {
			t.unsolOpen = false
			t.r2tNext = t.unsolNext
		}
		return dataOutOK, ""
	}
	i := t.findR2T(d.TTT)
	if i < 0 {
		return dataOutBadTag, "Data-Out for an unknown Target Transfer Tag"
	}
	r := &t.r2ts[i]
	switch {
	case d.DataSN != r.dataSN:
		return dataOutSequence, "DataSN out of order"
	case off != uint64(r.offset)+uint64(r.received):
		return dataOutSequence, "BufferOffset out of order"
	case off+n > uint64(r.offset)+uint64(r.length):
		return dataOutSequence, "Data-Out beyond the R2T's desired length"
	}
	t.store(d.BufferOffset, d.Data)
	r.received += uint32(n)
	r.dataSN++
	if r.received == r.length {
		t.r2ts = append(t.r2ts[:i], t.r2ts[i+1:]...)
	} else if d.Final {
		return dataOutSequence, "F bit before the R2T's data was complete"
	}
	return dataOutOK, ""
}

// abortedTags remembers the last aborted ITTs, so Data-Out still in flight
// for them is dropped silently instead of rejected.
type abortedTags struct {
	tags [64]uint32
	n    int
}

func (a *abortedTags) add(itt uint32) {
	a.tags[a.n%len(a.tags)] = itt
	a.n++
}

func (a *abortedTags) has(itt uint32) bool {
	for i := 0; i < min(a.n, len(a.tags)); i++ {
		if a.tags[i] == itt {
			return true
		}
	}
	return false
}
