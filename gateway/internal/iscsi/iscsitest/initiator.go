// Package iscsitest is an iSCSI initiator for tests: it dials a target,
// logs in (AuthMethod None or CHAP, with mutual CHAP), runs SCSI commands
// over every data path (immediate data, unsolicited Data-Out, R2T), keeps
// many commands in flight, and sends arbitrary PDUs or raw bytes, malformed
// ones included, so tests can check how a target copes.
package iscsitest

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// ReservedTag is the "no tag" value of ITT and TTT fields.
const ReservedTag = 0xffffffff

// Params are the values that govern the full feature phase, as negotiated.
type Params struct {
	HeaderDigest, DataDigest  bool
	InitialR2T, ImmediateData bool
	// MaxSendDataSegment is the target's MaxRecvDataSegmentLength: the
	// largest data segment this initiator may send.
	MaxSendDataSegment int
	// MaxRecvDataSegment is what this initiator declared.
	MaxRecvDataSegment int
	MaxBurstLength     int
	FirstBurstLength   int
	MaxOutstandingR2T  int
}

// Initiator is one connection to a target. It is not safe for concurrent
// use: one goroutine drives it.
type Initiator struct {
	Conn   net.Conn
	Reader *pdu.Reader
	Writer *pdu.Writer
	// Timeout bounds every Recv (default 10 s).
	Timeout time.Duration

	ISID      [6]byte
	TSIH      uint16
	CID       uint16
	CmdSN     uint32
	ExpStatSN uint32
	Params    Params

	// Keys the target sent during login, last value wins.
	TargetKeys map[string]string

	lastITT  uint32
	inflight map[uint32]*Cmd
	// Unexpected collects PDUs Poll did not know what to do with (NOP-In
	// pings are answered automatically and not recorded).
	Unexpected []*pdu.PDU

	// Reused by Submit and Poll so that the initiator allocates little
	// per command and benchmarks measure the target.
	txCmd  pdu.PDU
	tx     []*pdu.PDU
	rx     pdu.PDU
	dataIn pdu.DataIn
	resp   pdu.SCSIResponse
}

// Dial connects to a target portal.
func Dial(addr string) (*Initiator, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return New(nc), nil
}

// New wraps an established connection.
func New(nc net.Conn) *Initiator {
	return &Initiator{
		Conn:     nc,
		Reader:   pdu.NewReader(nc),
		Writer:   pdu.NewWriter(nc),
		Timeout:  10 * time.Second,
		ISID:     [6]byte{0x80, 0x12, 0x34, 0x56, 0x00, 0x01},
		CID:      1,
		inflight: make(map[uint32]*Cmd),
		Params: Params{
			InitialR2T: true, ImmediateData: true,
			MaxSendDataSegment: 8192, MaxRecvDataSegment: 8192,
			MaxBurstLength: 262144, FirstBurstLength: 65536, MaxOutstandingR2T: 1,
		},
	}
}

// Close closes the connection.
func (in *Initiator) Close() error { return in.Conn.Close() }

// NextITT returns a fresh initiator task tag.
func (in *Initiator) NextITT() uint32 {
	in.lastITT++
	if in.lastITT == ReservedTag {
		in.lastITT = 1
	}
	return in.lastITT
}

// Send writes PDUs as they are (digests applied as negotiated; the Writer
// sets DataSegmentLength from the data).
func (in *Initiator) Send(pdus ...*pdu.PDU) error {
	_ = in.Conn.SetWriteDeadline(time.Now().Add(in.Timeout))
	return in.Writer.WriteBatch(pdus)
}

// SendRaw writes bytes as they are: for malformed PDUs.
func (in *Initiator) SendRaw(b []byte) error {
	_ = in.Conn.SetWriteDeadline(time.Now().Add(in.Timeout))
	_, err := in.Conn.Write(b)
	return err
}

// Recv reads the next PDU, tracking ExpStatSN from PDUs that carry status.
func (in *Initiator) Recv() (*pdu.PDU, error) {
	_ = in.Conn.SetReadDeadline(time.Now().Add(in.Timeout))
	p, err := in.Reader.Read()
	if err != nil {
		return nil, err
	}
	in.trackStatSN(p)
	return p, nil
}

// RecvOpcode reads PDUs until one with the opcode arrives, answering NOP-In
// pings on the way; other PDUs go to Unexpected.
func (in *Initiator) RecvOpcode(op pdu.Opcode) (*pdu.PDU, error) {
	for {
		p, err := in.Recv()
		if err != nil {
			return nil, err
		}
		if p.BHS.Opcode() == op {
			return p, nil
		}
		if err := in.answerPing(p); err != nil {
			return nil, err
		}
	}
}

// ExpectClosed reads until the target closes the connection; PDUs read on
// the way are returned.
func (in *Initiator) ExpectClosed() ([]*pdu.PDU, error) {
	var got []*pdu.PDU
	for {
		p, err := in.Recv()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, fmt.Errorf("iscsitest: connection still open: %w", err)
			}
			return got, nil
		}
		got = append(got, p)
	}
}

func (in *Initiator) trackStatSN(p *pdu.PDU) {
	b := &p.BHS
	statSN := be32(b[24:28])
	switch b.Opcode() {
	case pdu.OpSCSIResponse, pdu.OpTaskMgmtResp, pdu.OpTextResp, pdu.OpLogoutResp,
		pdu.OpReject, pdu.OpAsyncMsg, pdu.OpLoginResp:
	case pdu.OpNOPIn:
		if b.ITT() == ReservedTag {
			return
		}
	case pdu.OpDataIn:
		if b[1]&0x01 == 0 {
			return
		}
	default:
		return
	}
	in.ExpStatSN = statSN + 1
}

// answerPing answers a target NOP-In ping, or records an unexpected PDU.
func (in *Initiator) answerPing(p *pdu.PDU) error {
	if p.BHS.Opcode() == pdu.OpNOPIn && p.BHS.ITT() == ReservedTag {
		n, err := pdu.ParseNOPIn(p)
		if err != nil {
			return err
		}
		if n.TTT == ReservedTag {
			return nil // a window update, not a ping: no answer (RFC 7143 section 11.19)
		}
		return in.Send((&pdu.NOPOut{
			Immediate: true, ITT: ReservedTag, TTT: n.TTT, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN,
		}).Encode())
	}
	in.Unexpected = append(in.Unexpected, p)
	return nil
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
