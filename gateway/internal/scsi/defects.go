package scsi

// READ DEFECT DATA(10) and READ DEFECT DATA(12) (SBC-3 5.11, 5.12). A
// virtual disk has no medium defects: the primary list (PLIST) and the grown
// list (GLIST) are both empty, and an empty list can be expressed in every
// address descriptor format, so only the defect list header is returned.

// Address descriptor formats of the DEFECT LIST FORMAT field (SBC-3
// table 33). Values 000b to 101b are the standard formats; 110b is vendor
// specific and 111b is reserved.
const (
	defectFormatLongBlock      byte = 0x3 // what is returned when the requested format has no meaning here
	defectFormatVendorSpecific byte = 0x6
	defectFormatReserved       byte = 0x7
)

// Bits of the request and of the header byte that mirrors it.
const (
	defectListPrimary byte = 0x10 // REQ_PLIST / PLISTV
	defectListGrown   byte = 0x08 // REQ_GLIST / GLISTV
	defectFormatMask  byte = 0x07
)

// cmdReadDefectData answers both CDB sizes: the 10-byte header has a 16-bit
// DEFECT LIST LENGTH at bytes 2-3, the 12-byte one a GENERATION CODE at 2-3
// (zero: not supported) and a 32-bit length at 4-7. The ADDRESS DESCRIPTOR
// INDEX of the 12-byte CDB always lies at or beyond the end of an empty
// list, which yields the header alone.
func cmdReadDefectData(t *task) ([]byte, error) {
	flagsByte := 2
	alloc := uint32(be16(t.cdb[7:9]))
	header := make([]byte, 4)
	if t.cdb[0] == opReadDefectData12 {
		flagsByte = 1
		alloc = be32(t.cdb[6:10])
		header = make([]byte, 8)
	}
	flags := t.cdb[flagsByte]
	requested := flags & defectFormatMask
	lists := flags & (defectListPrimary | defectListGrown)
	returned := requested
	var err error
	switch requested {
	case defectFormatReserved:
		return nil, invalidCDB(flagsByte, 2)
	case defectFormatVendorSpecific:
		// There is no vendor specific format: the list comes back in the
		// default format, and when a list was asked for the initiator is
		// told it got another format than it requested (SBC-3 5.11.1).
		returned = defectFormatLongBlock
		if lists != 0 {
			err = newSense(senseRecoveredError, ascDefectListNotFound)
		}
	}
	// PLISTV and GLISTV: each requested list is returned, empty. The
	// DEFECT LIST LENGTH stays zero.
	header[1] = lists | returned
	return cut(header, alloc), err
}
