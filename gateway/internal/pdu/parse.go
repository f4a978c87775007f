package pdu

// Request is any decoded initiator PDU returned by ParseRequest.
type Request interface {
	Opcode() Opcode
}

func (*SCSICommand) Opcode() Opcode { return OpSCSICommand }
func (*DataOut) Opcode() Opcode     { return OpDataOut }
func (*NOPOut) Opcode() Opcode      { return OpNOPOut }
func (*TaskMgmtReq) Opcode() Opcode { return OpTaskMgmtReq }
func (*LoginReq) Opcode() Opcode    { return OpLoginReq }
func (*TextReq) Opcode() Opcode     { return OpTextReq }
func (*LogoutReq) Opcode() Opcode   { return OpLogoutReq }
func (*SNACKReq) Opcode() Opcode    { return OpSNACKReq }

type requestParser func(*PDU) (Request, error)

// wrap adapts a typed parser so a nil result stays a nil interface.
func wrap[T Request](f func(*PDU) (T, error)) requestParser {
	return func(p *PDU) (Request, error) {
		v, err := f(p)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

// requestParsers is indexed by the 6-bit opcode; nil entries are opcodes a
// target never receives.
var requestParsers = [64]requestParser{
	OpNOPOut:      wrap(ParseNOPOut),
	OpSCSICommand: wrap(ParseSCSICommand),
	OpTaskMgmtReq: wrap(ParseTaskMgmtReq),
	OpLoginReq:    wrap(ParseLoginReq),
	OpTextReq:     wrap(ParseTextReq),
	OpDataOut:     wrap(ParseDataOut),
	OpLogoutReq:   wrap(ParseLogoutReq),
	OpSNACKReq:    wrap(ParseSNACKReq),
}

// ParseRequest decodes any initiator PDU by opcode. Opcodes a target does not
// accept give a *ProtocolError (answer with Reject RejectCmdNotSupported
// or RejectProtocolError).
func ParseRequest(p *PDU) (Request, error) {
	if p == nil {
		return nil, protoErr("nil PDU")
	}
	if f := requestParsers[p.BHS.Opcode()]; f != nil {
		return f(p)
	}
	return nil, protoErr("unsupported opcode " + p.BHS.Opcode().String())
}
