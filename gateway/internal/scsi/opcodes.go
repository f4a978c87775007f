package scsi

// Operation codes (SPC-4, SBC-3).
const (
	opTestUnitReady     byte = 0x00
	opRequestSense      byte = 0x03
	opRead6             byte = 0x08
	opWrite6            byte = 0x0a
	opInquiry           byte = 0x12
	opModeSelect6       byte = 0x15
	opReserve6          byte = 0x16
	opRelease6          byte = 0x17
	opModeSense6        byte = 0x1a
	opStartStopUnit     byte = 0x1b
	opPreventAllow      byte = 0x1e
	opReadCapacity10    byte = 0x25
	opRead10            byte = 0x28
	opWrite10           byte = 0x2a
	opWriteVerify10     byte = 0x2e
	opVerify10          byte = 0x2f
	opPrefetch10        byte = 0x34
	opSyncCache10       byte = 0x35
	opReadDefectData10  byte = 0x37
	opWriteSame10       byte = 0x41
	opUnmap             byte = 0x42
	opModeSelect10      byte = 0x55
	opReserve10         byte = 0x56
	opRelease10         byte = 0x57
	opModeSense10       byte = 0x5a
	opPersistentIn      byte = 0x5e
	opPersistentOut     byte = 0x5f
	opVariableLength    byte = 0x7f
	opThirdPartyCopyOut byte = 0x83
	opThirdPartyCopyIn  byte = 0x84
	opRead16            byte = 0x88
	opCompareAndWrite   byte = 0x89
	opWrite16           byte = 0x8a
	opOrWrite16         byte = 0x8b
	opWriteVerify16     byte = 0x8e
	opVerify16          byte = 0x8f
	opPrefetch16        byte = 0x90
	opSyncCache16       byte = 0x91
	opWriteSame16       byte = 0x93
	opWriteAtomic16     byte = 0x9c
	opServiceActionIn16 byte = 0x9e
	opReportLUNs        byte = 0xa0
	opMaintenanceIn     byte = 0xa3
	opRead12            byte = 0xa8
	opWrite12           byte = 0xaa
	opWriteVerify12     byte = 0xae
	opVerify12          byte = 0xaf
	opReadDefectData12  byte = 0xb7
)

// Service actions.
const (
	saReadCapacity16     uint16 = 0x10 // SERVICE ACTION IN(16)
	saGetLBAStatus       uint16 = 0x12 // SERVICE ACTION IN(16)
	saReportTPG          uint16 = 0x0a // MAINTENANCE IN
	saReportOpcodes      uint16 = 0x0c // MAINTENANCE IN
	saReportTMFs         uint16 = 0x0d // MAINTENANCE IN
	saExtendedCopyLID1   uint16 = 0x00 // THIRD-PARTY COPY OUT
	saCopyStatusLID1     uint16 = 0x00 // THIRD-PARTY COPY IN: RECEIVE COPY STATUS(LID1)
	saCopyOpParams       uint16 = 0x03 // THIRD-PARTY COPY IN: RECEIVE COPY OPERATING PARAMETERS
	saCopyFailedSegments uint16 = 0x04 // THIRD-PARTY COPY IN: RECEIVE COPY FAILURE DETAILS(LID1)
	saPRInReadKeys       uint16 = 0x00
	saPRInReadRes        uint16 = 0x01
	saPRInReportCaps     uint16 = 0x02
	saPRInReadFull       uint16 = 0x03
)

// serviceActionOf returns where the service action of opcode sits, if the
// opcode defines service actions: bits 4:0 of byte 1, or bytes 8-9 of a
// variable-length CDB.
func serviceActionOf(cdb []byte) (uint16, bool) {
	switch cdb[0] {
	case opVariableLength:
		if len(cdb) < 10 {
			return 0, true
		}
		return be16(cdb[8:10]), true
	case opServiceActionIn16, opMaintenanceIn, opThirdPartyCopyOut, opThirdPartyCopyIn,
		opPersistentIn, opPersistentOut:
		if len(cdb) < 2 {
			return 0, true
		}
		return uint16(cdb[1] & 0x1f), true
	}
	return 0, false
}

// saFieldByte is the CDB byte holding the service action (field pointer).
func saFieldByte(opcode byte) int {
	if opcode == opVariableLength {
		return 8
	}
	return 1
}
