package iscsi

// Sense data for the few conditions the transport answers itself (fixed
// format, SPC-4 section 4.5.3).

const (
	senseIllegalRequest = 0x05
	senseAbortedCommand = 0x0b
)

func fixedSense(key, asc, ascq byte) []byte {
	s := make([]byte, 18)
	s[0] = 0x70
	s[2] = key
	s[7] = 10 // additional sense length
	s[12] = asc
	s[13] = ascq
	return s
}

var (
	// A command the transport cannot carry (bidirectional).
	senseInvalidFieldInCIU = func() []byte { return fixedSense(senseIllegalRequest, 0x0e, 0x03) }
	// A transfer larger than the target accepts.
	senseInvalidFieldInCDB = func() []byte { return fixedSense(senseIllegalRequest, 0x24, 0x00) }
	// A LUN field in an addressing method we do not use.
	senseLUNNotSupported = func() []byte { return fixedSense(senseIllegalRequest, 0x25, 0x00) }

	// The iSCSI conditions of RFC 7143 section 11.4.7.2.
	senseUnexpectedUnsolicited = func() []byte { return fixedSense(senseAbortedCommand, 0x0c, 0x0c) }
	senseIncorrectDataAmount   = func() []byte { return fixedSense(senseAbortedCommand, 0x0c, 0x0d) }
	senseProtocolCRC           = func() []byte { return fixedSense(senseAbortedCommand, 0x47, 0x05) }
)
