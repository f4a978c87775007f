package iscsitest

import (
	"fmt"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// Cmd is one SCSI command.
type Cmd struct {
	LUN  uint64 // LUN number (encoded on the wire by pdu.EncodeLUN)
	CDB  []byte
	Read bool
	// EDTL is the expected data transfer length. For writes Data must hold
	// EDTL bytes.
	EDTL uint32
	Data []byte
	// ReadBuf, when at least EDTL long, receives Data-In (no allocation).
	ReadBuf []byte
	// NoImmediate sends no immediate data even when negotiated;
	// NoUnsolicited sends no unsolicited Data-Out even when InitialR2T=No.
	NoImmediate, NoUnsolicited bool
	Attr                       uint8
	Immediate                  bool
	// ReuseResult: the next Submit reuses Result instead of making a new
	// one (benchmarks that resubmit a Cmd once they read its Result).
	ReuseResult bool

	// Filled in by the exchange.
	ITT    uint32
	CmdSN  uint32
	Result *Result
	done   bool
	r2ts   int
}

// Result is how a command ended.
type Result struct {
	Status               uint8
	Sense                []byte
	Data                 []byte // Data-In received (up to the highest offset seen)
	Overflow, Underflow  bool
	Residual             uint32
	DataInPDUs           int
	R2Ts                 int
	PhaseCollapsedStatus bool // status came in the last Data-In
}

// Done reports whether the command finished.
func (c *Cmd) Done() bool { return c.done }

// Submit sends a command with the immediate data and unsolicited Data-Out
// the negotiated parameters allow; R2Ts are answered by Poll.
func (in *Initiator) Submit(c *Cmd) error {
	p := &in.Params
	c.ITT = in.NextITT()
	c.CmdSN = in.CmdSN
	if c.ReuseResult && c.Result != nil {
		*c.Result = Result{}
	} else {
		c.Result = &Result{}
	}
	c.done, c.r2ts = false, 0
	if c.Read && c.ReadBuf != nil && len(c.ReadBuf) >= int(c.EDTL) {
		c.Result.Data = c.ReadBuf[:0]
	}
	write := len(c.Data) > 0
	imm := 0
	if write && p.ImmediateData && !c.NoImmediate {
		imm = min(len(c.Data), p.FirstBurstLength, p.MaxSendDataSegment)
	}
	unsolEnd := imm
	if write && !p.InitialR2T && !c.NoUnsolicited {
		unsolEnd = min(len(c.Data), p.FirstBurstLength)
	}
	cmd := pdu.SCSICommand{
		Immediate: c.Immediate, Final: unsolEnd == imm, Read: c.Read, Write: write,
		Attr: c.Attr, LUN: pdu.EncodeLUN(c.LUN), ITT: c.ITT, EDTL: c.EDTL,
		CmdSN: c.CmdSN, ExpStatSN: in.ExpStatSN, CDB: c.CDB, Data: c.Data[:imm],
	}
	if !c.Immediate {
		in.CmdSN++
	}
	// Send writes synchronously: txCmd and tx are free again once it
	// returned.
	cmd.EncodeTo(&in.txCmd)
	pdus := append(in.tx[:0], &in.txCmd)
	pdus = append(pdus, in.dataOut(c, ReservedTag, uint32(imm), uint32(unsolEnd-imm))...)
	in.inflight[c.ITT] = c
	err := in.Send(pdus...)
	clear(pdus)
	in.tx = pdus[:0]
	in.txCmd.Data = nil
	return err
}

// dataOut builds the Data-Out PDUs for [off, off+length) of c's data.
func (in *Initiator) dataOut(c *Cmd, ttt, off, length uint32) []*pdu.PDU {
	var out []*pdu.PDU
	seg := uint32(in.Params.MaxSendDataSegment)
	sn := uint32(0)
	for done := uint32(0); done < length; {
		n := min(seg, length-done)
		out = append(out, (&pdu.DataOut{
			Final: done+n == length, LUN: pdu.EncodeLUN(c.LUN), ITT: c.ITT, TTT: ttt,
			ExpStatSN: in.ExpStatSN, DataSN: sn, BufferOffset: off + done,
			Data: c.Data[off+done : off+done+n],
		}).Encode())
		done += n
		sn++
	}
	return out
}

// Poll reads one PDU and advances the command it belongs to: R2Ts are
// answered, Data-In is stored, status completes the command. It returns
// the command that completed, if any.
func (in *Initiator) Poll() (*Cmd, error) {
	_ = in.Conn.SetReadDeadline(time.Now().Add(in.Timeout))
	// Data-In, R2T and SCSI Response are read into in.rx, which handle
	// does not keep (a Result's sense aliases the data, not the PDU);
	// anything else into a PDU of its own, as Recv would.
	p := &in.rx
	if err := in.Reader.ReadHeader(p); err != nil {
		return nil, err
	}
	switch p.BHS.Opcode() {
	case pdu.OpDataIn, pdu.OpR2T, pdu.OpSCSIResponse:
	default:
		own := *p
		p = &own
	}
	if err := in.Reader.ReadData(p); err != nil {
		return nil, err
	}
	in.trackStatSN(p)
	return in.handle(p)
}

// pollPDU handles a PDU read elsewhere the way Poll would.
func (in *Initiator) pollPDU(p *pdu.PDU) error {
	_, err := in.handle(p)
	return err
}

func (in *Initiator) handle(p *pdu.PDU) (*Cmd, error) {
	switch p.BHS.Opcode() {
	case pdu.OpR2T:
		r, err := pdu.ParseR2T(p)
		if err != nil {
			return nil, err
		}
		c := in.inflight[r.ITT]
		if c == nil {
			return nil, fmt.Errorf("iscsitest: R2T for unknown ITT %#x", r.ITT)
		}
		if uint64(r.BufferOffset)+uint64(r.DesiredLength) > uint64(len(c.Data)) {
			return nil, fmt.Errorf("iscsitest: R2T beyond the data: offset %d length %d", r.BufferOffset, r.DesiredLength)
		}
		c.r2ts++
		return nil, in.Send(in.dataOut(c, r.TTT, r.BufferOffset, r.DesiredLength)...)
	case pdu.OpDataIn:
		d := &in.dataIn
		if err := pdu.ParseDataInInto(p, d); err != nil {
			return nil, err
		}
		c := in.inflight[d.ITT]
		if c == nil {
			return nil, fmt.Errorf("iscsitest: Data-In for unknown ITT %#x", d.ITT)
		}
		res := c.Result
		end := int(d.BufferOffset) + len(d.Data)
		if end > int(c.EDTL) {
			return nil, fmt.Errorf("iscsitest: Data-In beyond EDTL: %d > %d", end, c.EDTL)
		}
		if end > len(res.Data) {
			if end <= cap(res.Data) {
				res.Data = res.Data[:end]
			} else {
				grown := make([]byte, end, max(end, int(c.EDTL)))
				copy(grown, res.Data)
				res.Data = grown
			}
		}
		copy(res.Data[d.BufferOffset:], d.Data)
		res.DataInPDUs++
		p.Release()
		if !d.HasStatus {
			return nil, nil
		}
		res.Status = d.Status
		res.Overflow, res.Underflow, res.Residual = d.Overflow, d.Underflow, d.Residual
		res.PhaseCollapsedStatus = true
		return in.complete(c), nil
	case pdu.OpSCSIResponse:
		r := &in.resp
		if err := pdu.ParseSCSIResponseInto(p, r); err != nil {
			return nil, err
		}
		c := in.inflight[r.ITT]
		if c == nil {
			return nil, fmt.Errorf("iscsitest: SCSI Response for unknown ITT %#x", r.ITT)
		}
		res := c.Result
		res.Status = r.Status
		res.Sense = r.Sense
		res.Overflow, res.Underflow, res.Residual = r.Overflow, r.Underflow, r.Residual
		return in.complete(c), nil
	}
	return nil, in.answerPing(p)
}

func (in *Initiator) complete(c *Cmd) *Cmd {
	delete(in.inflight, c.ITT)
	c.Result.R2Ts = c.r2ts
	c.done = true
	return c
}

// Inflight is the number of submitted commands not yet complete.
func (in *Initiator) Inflight() int { return len(in.inflight) }

// Do runs one command to completion.
func (in *Initiator) Do(c *Cmd) (*Result, error) {
	if err := in.Submit(c); err != nil {
		return nil, err
	}
	for !c.done {
		if _, err := in.Poll(); err != nil {
			return nil, err
		}
	}
	return c.Result, nil
}
