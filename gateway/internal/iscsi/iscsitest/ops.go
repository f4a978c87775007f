package iscsitest

import (
	"bytes"
	"fmt"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// Ping sends a NOP-Out with data and returns the NOP-In echo.
func (in *Initiator) Ping(data []byte) (*pdu.NOPIn, error) {
	itt := in.NextITT()
	if err := in.Send((&pdu.NOPOut{
		Immediate: true, ITT: itt, TTT: ReservedTag, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, Data: data,
	}).Encode()); err != nil {
		return nil, err
	}
	for {
		p, err := in.RecvOpcode(pdu.OpNOPIn)
		if err != nil {
			return nil, err
		}
		n, err := pdu.ParseNOPIn(p)
		if err != nil {
			return nil, err
		}
		if n.ITT == itt {
			return n, nil
		}
		if err := in.answerPing(p); err != nil {
			return nil, err
		}
	}
}

// Text sends a Text Request and gathers the whole (possibly continued)
// answer. The request is immediate.
func (in *Initiator) Text(kvs []login.KV) ([]login.KV, error) {
	itt := in.NextITT()
	req := &pdu.TextReq{
		Immediate: true, Final: true, ITT: itt, TTT: ReservedTag, CmdSN: in.CmdSN,
		ExpStatSN: in.ExpStatSN, Data: login.EncodeText(kvs),
	}
	var text []byte
	for {
		if err := in.Send(req.Encode()); err != nil {
			return nil, err
		}
		p, err := in.RecvOpcode(pdu.OpTextResp)
		if err != nil {
			return nil, err
		}
		r, err := pdu.ParseTextResp(p)
		if err != nil {
			return nil, err
		}
		if r.ITT != itt {
			return nil, fmt.Errorf("iscsitest: Text Response for ITT %#x, want %#x", r.ITT, itt)
		}
		text = append(text, r.Data...)
		if r.Final {
			return ParseKeys(text), nil
		}
		req.TTT, req.Data, req.ExpStatSN = r.TTT, nil, in.ExpStatSN
	}
}

// SendTargets asks for targets ("All", a name, or "").
func (in *Initiator) SendTargets(value string) ([]login.KV, error) {
	return in.Text([]login.KV{{Key: "SendTargets", Value: value}})
}

// TaskMgmt sends an immediate TMF request and returns the response code.
// Other PDUs arriving first (responses of the affected commands) are
// handled by Poll.
func (in *Initiator) TaskMgmt(fn uint8, lun uint64, refITT, refCmdSN uint32) (uint8, error) {
	itt := in.NextITT()
	if err := in.Send((&pdu.TaskMgmtReq{
		Immediate: true, Function: fn, LUN: pdu.EncodeLUN(lun), ITT: itt, RefTaskTag: refITT,
		CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, RefCmdSN: refCmdSN,
	}).Encode()); err != nil {
		return 0, err
	}
	for {
		p, err := in.Recv()
		if err != nil {
			return 0, err
		}
		if p.BHS.Opcode() == pdu.OpTaskMgmtResp && p.BHS.ITT() == itt {
			r, err := pdu.ParseTaskMgmtResp(p)
			if err != nil {
				return 0, err
			}
			return r.Response, nil
		}
		if err := in.pollPDU(p); err != nil {
			return 0, err
		}
	}
}

// Logout sends a Logout Request and returns the response code.
func (in *Initiator) Logout(reason uint8) (uint8, error) {
	itt := in.NextITT()
	if err := in.Send((&pdu.LogoutReq{
		Immediate: true, Reason: reason, ITT: itt, CID: in.CID, CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN,
	}).Encode()); err != nil {
		return 0, err
	}
	for {
		p, err := in.Recv()
		if err != nil {
			return 0, err
		}
		if p.BHS.Opcode() == pdu.OpLogoutResp {
			r, err := pdu.ParseLogoutResp(p)
			if err != nil {
				return 0, err
			}
			return r.Response, nil
		}
		if err := in.pollPDU(p); err != nil {
			return 0, err
		}
	}
}

// ExpectReject reads until a Reject arrives and returns it.
func (in *Initiator) ExpectReject() (*pdu.Reject, error) {
	p, err := in.RecvOpcode(pdu.OpReject)
	if err != nil {
		return nil, err
	}
	return pdu.ParseReject(p)
}

// ParseKeys splits "key=value\0" pairs. Unlike login.ParseText it accepts
// repeated keys, which SendTargets answers are made of.
func ParseKeys(text []byte) []login.KV {
	var out []login.KV
	for _, rec := range bytes.Split(text, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(rec, []byte{'='})
		out = append(out, login.KV{Key: string(k), Value: string(v)})
	}
	return out
}
