package login

// Key names (RFC 7143 §12, §13).
const (
	keyAuthMethod           = "AuthMethod"
	keyHeaderDigest         = "HeaderDigest"
	keyDataDigest           = "DataDigest"
	keyMaxConnections       = "MaxConnections"
	keySendTargets          = "SendTargets"
	keyTargetName           = "TargetName"
	keyInitiatorName        = "InitiatorName"
	keyTargetAlias          = "TargetAlias"
	keyInitiatorAlias       = "InitiatorAlias"
	keyTargetAddress        = "TargetAddress"
	keyTargetPortalGroupTag = "TargetPortalGroupTag"
	keyInitialR2T           = "InitialR2T"
	keyImmediateData        = "ImmediateData"
	keyMaxRecvDSL           = "MaxRecvDataSegmentLength"
	keyMaxBurstLength       = "MaxBurstLength"
	keyFirstBurstLength     = "FirstBurstLength"
	keyDefaultTime2Wait     = "DefaultTime2Wait"
	keyDefaultTime2Retain   = "DefaultTime2Retain"
	keyMaxOutstandingR2T    = "MaxOutstandingR2T"
	keyDataPDUInOrder       = "DataPDUInOrder"
	keyDataSequenceInOrder  = "DataSequenceInOrder"
	keyErrorRecoveryLevel   = "ErrorRecoveryLevel"
	keySessionType          = "SessionType"
	keyOFMarker             = "OFMarker"
	keyIFMarker             = "IFMarker"
	keyOFMarkInt            = "OFMarkInt"
	keyIFMarkInt            = "IFMarkInt"
	keyTaskReporting        = "TaskReporting"

	keyCHAPA = "CHAP_A"
	keyCHAPI = "CHAP_I"
	keyCHAPC = "CHAP_C"
	keyCHAPN = "CHAP_N"
	keyCHAPR = "CHAP_R"
)

// Range of data segment and burst lengths (RFC 7143 §13.12-13.14).
const (
	minSegmentLength = 512
	maxSegmentLength = 1<<24 - 1
)

// sessionKey describes a leading-only, session-wide operational key whose
// value is a number or a Boolean negotiated with a result function.
type sessionKey struct {
	name string
	fn   resultFunc
	// lo and hi bound numerical keys.
	lo, hi uint64
	// irrelevantInDiscovery: "Irrelevant when: SessionType=Discovery".
	irrelevantInDiscovery bool
	number                func(*Params) *int
	flag                  func(*Params) *bool
}

func (k *sessionKey) isBool() bool { return k.flag != nil }

// sessionKeys are the LO/SW keys of RFC 7143 §13 (DataPDUInOrder and
// DataSequenceInOrder are OR: either side may demand in-order data).
var sessionKeys = []sessionKey{
	{name: keyMaxConnections, fn: fnMin, lo: 1, hi: 65535, irrelevantInDiscovery: true,
		number: func(p *Params) *int { return &p.MaxConnections }},
	{name: keyInitialR2T, fn: fnOr, irrelevantInDiscovery: true,
		flag: func(p *Params) *bool { return &p.InitialR2T }},
	{name: keyImmediateData, fn: fnAnd, irrelevantInDiscovery: true,
		flag: func(p *Params) *bool { return &p.ImmediateData }},
	{name: keyMaxBurstLength, fn: fnMin, lo: minSegmentLength, hi: maxSegmentLength, irrelevantInDiscovery: true,
		number: func(p *Params) *int { return &p.MaxBurstLength }},
	{name: keyFirstBurstLength, fn: fnMin, lo: minSegmentLength, hi: maxSegmentLength, irrelevantInDiscovery: true,
		number: func(p *Params) *int { return &p.FirstBurstLength }},
	{name: keyDefaultTime2Wait, fn: fnMax, lo: 0, hi: 3600,
		number: func(p *Params) *int { return &p.DefaultTime2Wait }},
	{name: keyDefaultTime2Retain, fn: fnMin, lo: 0, hi: 3600,
		number: func(p *Params) *int { return &p.DefaultTime2Retain }},
	{name: keyMaxOutstandingR2T, fn: fnMin, lo: 1, hi: 65535, irrelevantInDiscovery: true,
		number: func(p *Params) *int { return &p.MaxOutstandingR2T }},
	{name: keyDataPDUInOrder, fn: fnOr, irrelevantInDiscovery: true,
		flag: func(p *Params) *bool { return &p.DataPDUInOrder }},
	{name: keyDataSequenceInOrder, fn: fnOr, irrelevantInDiscovery: true,
		flag: func(p *Params) *bool { return &p.DataSequenceInOrder }},
	{name: keyErrorRecoveryLevel, fn: fnMin, lo: 0, hi: 2,
		number: func(p *Params) *int { return &p.ErrorRecoveryLevel }},
}

var sessionKeyIndex = func() map[string]*sessionKey {
	m := make(map[string]*sessionKey, len(sessionKeys))
	for i := range sessionKeys {
		m[sessionKeys[i].name] = &sessionKeys[i]
	}
	return m
}()

// isSecurityKey reports keys that belong to the security stage only.
func isSecurityKey(k string) bool {
	switch k {
	case keyAuthMethod, keyCHAPA, keyCHAPI, keyCHAPC, keyCHAPN, keyCHAPR:
		return true
	}
	return false
}

// isTargetOnlyKey reports declarations only a target may send.
func isTargetOnlyKey(k string) bool {
	switch k {
	case keyTargetAlias, keyTargetAddress, keyTargetPortalGroupTag:
		return true
	}
	return false
}

// normalizeOffer makes the target's offer usable: out-of-range numbers take
// the RFC default and ErrorRecoveryLevel is 0, the only level implemented.
func normalizeOffer(o Params) Params {
	d := DefaultParams()
	for i := range sessionKeys {
		k := &sessionKeys[i]
		if k.isBool() {
			continue
		}
		if v := *k.number(&o); v < int(k.lo) || uint64(v) > k.hi {
			*k.number(&o) = *k.number(&d)
		}
	}
	o.ErrorRecoveryLevel = 0
	if v := o.TargetMaxRecvDataSegmentLength; v < minSegmentLength || v > maxSegmentLength {
		o.TargetMaxRecvDataSegmentLength = d.TargetMaxRecvDataSegmentLength
	}
	o.FirstBurstLength = min(o.FirstBurstLength, o.MaxBurstLength)
	return o
}
