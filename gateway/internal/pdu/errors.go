package pdu

import "errors"

// ProtocolError reports a malformed PDU. The caller decides, per RFC 7143,
// whether it answers with a Reject or drops the connection.
type ProtocolError struct {
	Reason string
}

func (e *ProtocolError) Error() string { return "iscsi: protocol error: " + e.Reason }

func protoErr(reason string) *ProtocolError { return &ProtocolError{Reason: reason} }

// ErrHeaderDigest means the header digest did not match. The framing can no
// longer be trusted, so the connection must be dropped.
var ErrHeaderDigest = errors.New("iscsi: header digest error")

// DataDigestError means the header was valid but the data digest did not
// match. The stream is still in sync: the target rejects the PDU with reason
// RejectDataDigest and carries on. PDU holds the damaged PDU; Release it.
type DataDigestError struct {
	PDU *PDU
}

func (e *DataDigestError) Error() string {
	if e.PDU == nil {
		return "iscsi: data digest error"
	}
	return "iscsi: data digest error (" + e.PDU.BHS.Opcode().String() + ")"
}
