package login

// Login stages (the CSG and NSG fields of Login PDUs, RFC 7143 §11.12.3).
const (
	StageSecurity    = 0
	StageOperational = 1
	StageFullFeature = 3
)

// Session types (the SessionType key).
const (
	SessionNormal    = "Normal"
	SessionDiscovery = "Discovery"
)

// Params are the negotiated values (operational keys, RFC 7143 §13) with RFC
// defaults before negotiation.
type Params struct {
	SessionType                               string // "Normal" | "Discovery"
	InitiatorName, InitiatorAlias, TargetName string
	HeaderDigest, DataDigest                  bool // CRC32C chosen
	MaxConnections                            int
	InitialR2T, ImmediateData                 bool
	// MaxRecvDataSegmentLength is the INITIATOR's declared value: the
	// largest data segment the target may send.
	MaxRecvDataSegmentLength int
	// TargetMaxRecvDataSegmentLength is the TARGET's declared value: the
	// largest data segment the target accepts.
	TargetMaxRecvDataSegmentLength       int
	MaxBurstLength, FirstBurstLength     int
	DefaultTime2Wait, DefaultTime2Retain int
	MaxOutstandingR2T                    int
	DataPDUInOrder, DataSequenceInOrder  bool
	ErrorRecoveryLevel                   int
}

// DefaultParams returns the RFC 7143 §13 defaults.
func DefaultParams() Params {
	return Params{
		SessionType:                    SessionNormal,
		MaxConnections:                 1,
		InitialR2T:                     true,
		ImmediateData:                  true,
		MaxRecvDataSegmentLength:       8192,
		TargetMaxRecvDataSegmentLength: 8192,
		MaxBurstLength:                 262144,
		FirstBurstLength:               65536,
		DefaultTime2Wait:               2,
		DefaultTime2Retain:             20,
		MaxOutstandingR2T:              1,
		DataPDUInOrder:                 true,
		DataSequenceInOrder:            true,
		ErrorRecoveryLevel:             0,
	}
}

// connectionDefaults resets the connection-only keys (RFC 7143 §13, scope
// CO) that every new connection negotiates afresh.
func (p *Params) connectionDefaults() {
	d := DefaultParams()
	p.HeaderDigest = d.HeaderDigest
	p.DataDigest = d.DataDigest
	p.MaxRecvDataSegmentLength = d.MaxRecvDataSegmentLength
	p.TargetMaxRecvDataSegmentLength = d.TargetMaxRecvDataSegmentLength
}
