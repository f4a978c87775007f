package iscsi

import (
	"slices"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// maxTextRequest bounds a text request gathered over several PDUs.
const maxTextRequest = 64 << 10

// textExchange is the connection's one open text negotiation: request
// pieces sent with the C bit, and the part of a long answer not yet sent.
type textExchange struct {
	active bool
	itt    uint32
	ttt    uint32
	req    []byte
	rest   []byte
}

// handleText runs a Text Request (SendTargets, in discovery and normal
// sessions, and the few keys allowed in the full feature phase).
func (c *conn) handleText(p *pdu.PDU, req *pdu.TextReq) {
	defer p.Release()
	x := &c.ffp.text
	if req.TTT != reservedTag {
		if !x.active || req.ITT != x.itt || req.TTT != x.ttt {
			c.log.Warn("Text Request continues no exchange", "itt", req.ITT, "ttt", req.TTT)
			c.reject(pdu.RejectInvalidPDUField, &p.BHS)
			return
		}
	} else {
		// A reserved TTT starts a new exchange, resetting any other.
		*x = textExchange{active: true, itt: req.ITT}
	}
	if len(x.rest) > 0 {
		c.sendTextPiece(req)
		return
	}
	if len(x.req)+len(req.Data) > maxTextRequest {
		c.log.Warn("Text Request too long")
		*x = textExchange{}
		c.reject(pdu.RejectProtocolError, &p.BHS)
		return
	}
	x.req = append(x.req, req.Data...)
	if req.Continue {
		x.ttt = c.nextTTT()
		c.sendText(req, false, false, x.ttt, nil)
		return
	}
	kvs, err := login.ParseText(x.req)
	x.req = nil
	if err != nil {
		c.log.Warn("malformed Text Request", "err", err)
		*x = textExchange{}
		c.reject(pdu.RejectProtocolError, &p.BHS)
		return
	}
	x.rest = login.EncodeText(c.textAnswer(kvs))
	c.sendTextPiece(req)
}

// sendTextPiece sends as much of the pending answer as one PDU may carry;
// the initiator fetches the rest with empty requests carrying the TTT.
func (c *conn) sendTextPiece(req *pdu.TextReq) {
	x := &c.ffp.text
	piece := x.rest
	more := len(piece) > c.maxSendSeg
	if more {
		piece = piece[:c.maxSendSeg]
	}
	x.rest = x.rest[len(piece):]
	final := !more && req.Final
	ttt := uint32(reservedTag)
	if final {
		*x = textExchange{}
	} else {
		x.ttt = c.nextTTT()
		ttt = x.ttt
	}
	c.sendText(req, final, more, ttt, piece)
}

func (c *conn) sendText(req *pdu.TextReq, final, cont bool, ttt uint32, data []byte) {
	f := &c.ffp
	w := &c.sess.window
	r := pdu.TextResp{
		Final: final, Continue: cont, LUN: req.LUN, ITT: req.ITT, TTT: ttt,
		StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN, Data: data,
	}
	f.statSN++
	c.sendControl(r.Encode(), nil)
}

// textAnswer answers the keys of a Text Request.
func (c *conn) textAnswer(kvs []login.KV) []login.KV {
	var out []login.KV
	for _, kv := range kvs {
		switch {
		case kv.Key == "SendTargets":
			out = append(out, c.sendTargets(kv.Value)...)
		case kv.Key == "MaxRecvDataSegmentLength":
			// Declarative and allowed in the full feature phase: it
			// changes how Data-In is cut from now on.
			n, err := strconv.Atoi(kv.Value)
			if err != nil || n < minDataSegment || n > maxDataSegment {
				out = append(out, login.KV{Key: kv.Key, Value: "Reject"})
				continue
			}
			c.maxSendSeg = n
		case operationalKeys[kv.Key]:
			// Login-only keys cannot be renegotiated here.
			out = append(out, login.KV{Key: kv.Key, Value: "Reject"})
		default:
			out = append(out, login.KV{Key: kv.Key, Value: "NotUnderstood"})
		}
	}
	return out
}

// operationalKeys are the RFC 7143 keys negotiated at login only.
var operationalKeys = map[string]bool{
	"HeaderDigest": true, "DataDigest": true, "MaxConnections": true, "TargetName": true,
	"InitiatorName": true, "TargetAlias": true, "InitiatorAlias": true, "TargetAddress": true,
	"TargetPortalGroupTag": true, "InitialR2T": true, "ImmediateData": true,
	"MaxBurstLength": true, "FirstBurstLength": true, "DefaultTime2Wait": true,
	"DefaultTime2Retain": true, "MaxOutstandingR2T": true, "DataPDUInOrder": true,
	"DataSequenceInOrder": true, "ErrorRecoveryLevel": true, "SessionType": true,
	"AuthMethod": true, "OFMarker": true, "IFMarker": true, "OFMarkInt": true, "IFMarkInt": true,
	"TaskReporting": true, "iSCSIProtocolLevel": true,
}

// sendTargets answers SendTargets=All | <iSCSI name> | "" (the session's
// own target, normal sessions only) with the targets this initiator may
// access, each with every portal as TargetAddress.
func (c *conn) sendTargets(value string) []login.KV {
	var entries []*targetEntry
	switch {
	case value == "All":
		entries = c.srv.targetList()
	case value == "" && !c.sess.discovery:
		if e := c.srv.lookupTarget(c.sess.key.target); e != nil {
			entries = append(entries, e)
		}
	case validISCSIName(value):
		if e := c.srv.lookupTarget(value); e != nil {
			entries = append(entries, e)
		}
	default:
		return []login.KV{{Key: "SendTargets", Value: "Reject"}}
	}
	slices.SortFunc(entries, func(a, b *targetEntry) int { return strings.Compare(a.spec.IQN, b.spec.IQN) })
	var out []login.KV
	for _, e := range entries {
		if _, err := e.access(c.sess.initiator, c.addr); err != nil {
			if ar, ok := err.(*addressRefusal); ok {
				c.srv.logAddressRefusal(c.log, "SendTargets: target not listed", c.sess.initiator, e.spec.IQN, ar)
			}
			continue
		}
		out = append(out, login.KV{Key: "TargetName", Value: e.spec.IQN})
		tag := strconv.Itoa(int(e.spec.TPGT))
		for _, portal := range e.spec.Portals {
			if !strings.Contains(portal, ",") {
				portal += "," + tag // an own portal; others' carry their tag
			}
			out = append(out, login.KV{Key: "TargetAddress", Value: portal})
		}
	}
	return out
}

// validISCSIName checks the name types of RFC 7143 section 4.2.7.
func validISCSIName(s string) bool {
	for _, prefix := range []string{"iqn.", "eui.", "naa."} {
		if strings.HasPrefix(s, prefix) && len(s) > len(prefix) {
			return true
		}
	}
	return false
}
