package scsi

// INQUIRY (SPC-4 6.6) and the vital product data pages (SPC-4 7.8, SBC-3
// 6.5).

// Peripheral qualifier and device type byte.
const (
	peripheralDisk     byte = 0x00 // qualifier 000b, direct-access block device
	peripheralNoLU     byte = 0x7f // qualifier 011b, device type 1Fh: no logical unit at this LUN
	standardInquiryLen      = 96
	versionSPC4        byte = 0x06
)

// Version descriptors (SPC-4 table 148): SAM-5, iSCSI, SPC-4, SBC-3.
var versionDescriptors = []uint16{0x00a0, 0x0960, 0x0460, 0x04c0}

// VPD page codes.
const (
	vpdSupportedPages       byte = 0x00
	vpdUnitSerial           byte = 0x80
	vpdDeviceIdentification byte = 0x83
	vpdExtendedInquiry      byte = 0x86
	vpdThirdPartyCopy       byte = 0x8f
	vpdBlockLimits          byte = 0xb0
	vpdBlockCharacteristics byte = 0xb1
	vpdLogicalProvisioning  byte = 0xb2
)

// vpdPage builds one VPD page for a logical unit.
type vpdPage struct {
	code  byte
	build func(t *task) []byte
}

// vpdPages lists the supported pages in ascending order (SPC-4 7.8.13).
var vpdPages []vpdPage

func init() {
	vpdPages = []vpdPage{
		{vpdSupportedPages, vpdSupported},
		{vpdUnitSerial, vpdSerial},
		{vpdDeviceIdentification, vpdDeviceID},
		{vpdExtendedInquiry, vpdExtended},
		{vpdThirdPartyCopy, vpdThirdParty},
		{vpdBlockLimits, vpdLimits},
		{vpdBlockCharacteristics, vpdCharacteristics},
		{vpdLogicalProvisioning, vpdProvisioning},
	}
}

// cmdInquiry is INQUIRY.
func cmdInquiry(t *task) ([]byte, error) {
	evpd := t.cdb[1]&0x01 != 0
	page := t.cdb[2]
	alloc := uint32(be16(t.cdb[3:5]))
	if !evpd {
		if page != 0 {
			return nil, invalidCDB(2, -1)
		}
		return cut(t.standardInquiry(), alloc), nil
	}
	if t.lu == nil {
		// No logical unit here: only the list of pages, which is empty
		// but for itself.
		if page != vpdSupportedPages {
			return nil, invalidCDB(2, -1)
		}
		return cut([]byte{peripheralNoLU, vpdSupportedPages, 0, 1, vpdSupportedPages}, alloc), nil
	}
	for _, p := range vpdPages {
		if p.code == page {
			return cut(p.build(t), alloc), nil
		}
	}
	return nil, invalidCDB(2, -1)
}

// standardInquiry is the standard INQUIRY data (SPC-4 6.6.2).
func (t *task) standardInquiry() []byte {
	d := make([]byte, standardInquiryLen)
	d[0] = peripheralDisk
	revision := DefaultRevision
	if t.lu == nil {
		d[0] = peripheralNoLU
	} else {
		revision = t.lu.cfg.Revision
	}
	d[2] = versionSPC4
	d[3] = 0x02 // RESPONSE DATA FORMAT 2 (HISUP=0: flat LUN addressing)
	d[4] = standardInquiryLen - 5
	d[5] = 0x10 | 0x08 // TPGS 01b (implicit asymmetric access), 3PC (EXTENDED COPY)
	d[7] = 0x02        // CMDQUE
	copyPadded(d[8:16], VendorID)
	copyPadded(d[16:32], ProductID)
	copyPadded(d[32:36], revision)
	for i, v := range versionDescriptors {
		put16(d[58+2*i:], v)
	}
	return d
}

// copyPadded copies s into dst, padding with spaces (SPC-4 4.4.1).
func copyPadded(dst []byte, s string) {
	n := copy(dst, s)
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}

// vpdHeader returns a page with its 4-byte header; the length is set by
// vpdFinish.
func vpdHeader(code byte) []byte { return []byte{peripheralDisk, code, 0, 0} }

func vpdFinish(p []byte) []byte {
	put16(p[2:4], uint16(len(p)-4))
	return p
}

func vpdSupported(*task) []byte {
	p := vpdHeader(vpdSupportedPages)
	for _, v := range vpdPages {
		p = append(p, v.code)
	}
	return vpdFinish(p)
}

func vpdSerial(t *task) []byte {
	return vpdFinish(append(vpdHeader(vpdUnitSerial), t.lu.cfg.Serial...))
}

// Designator fields (SPC-4 7.8.6).
const (
	codeSetBinary  byte = 0x1
	codeSetASCII   byte = 0x2
	codeSetUTF8    byte = 0x3
	protocolISCSI  byte = 0x5
	assocLU        byte = 0x0
	assocPort      byte = 0x1
	assocTarget    byte = 0x2
	desigT10Vendor byte = 0x1
	desigNAA       byte = 0x3
	desigRelPort   byte = 0x4
	desigTPG       byte = 0x5
	desigSCSIName  byte = 0x8
)

// designator encodes one designation descriptor. Port and target
// designators carry the protocol identifier (PIV=1).
func designator(codeSet, assoc, typ byte, value []byte) []byte {
	d := make([]byte, 4, 4+len(value))
	d[0] = codeSet
	d[1] = assoc<<4 | typ
	if assoc != assocLU {
		d[0] |= protocolISCSI << 4
		d[1] |= 0x80 // PIV
	}
	d[3] = byte(len(value))
	return append(d, value...)
}

// scsiName is a SCSI name string designator value: NUL terminated and padded
// to a multiple of four bytes (SPC-4 7.8.6.11).
func scsiName(s string) []byte {
	n := len(s) + 1
	n += (4 - n%4) % 4
	b := make([]byte, n)
	copy(b, s)
	return b
}

// vpdDeviceID is the Device Identification page: the logical unit's NAA and
// T10 vendor designators, and the target port's relative port, port group
// and name, and the target device name.
func vpdDeviceID(t *task) []byte {
	lu := t.lu
	p := vpdHeader(vpdDeviceIdentification)
	p = append(p, designator(codeSetBinary, assocLU, desigNAA, lu.naa[:])...)
	t10 := make([]byte, 8, 8+len(lu.cfg.WWN))
	copyPadded(t10, VendorID)
	p = append(p, designator(codeSetASCII, assocLU, desigT10Vendor, append(t10, lu.cfg.WWN...))...)
	var rel, tpg [4]byte
	put16(rel[2:4], t.nexus.RelativePortID)
	put16(tpg[2:4], t.nexus.PortGroupID)
	p = append(p, designator(codeSetBinary, assocPort, desigRelPort, rel[:])...)
	p = append(p, designator(codeSetBinary, assocPort, desigTPG, tpg[:])...)
	p = append(p, designator(codeSetUTF8, assocPort, desigSCSIName, scsiName(t.nexus.TargetPort()))...)
	p = append(p, designator(codeSetUTF8, assocTarget, desigSCSIName, scsiName(t.nexus.TargetName))...)
	return vpdFinish(p)
}

// vpdExtended is the Extended INQUIRY Data page (SPC-4 7.8.7).
func vpdExtended(t *task) []byte {
	p := make([]byte, 64)
	p[1] = vpdExtendedInquiry
	p[5] = 0x07 // HEADSUP, ORDSUP, SIMPSUP: task attributes honoured
	if t.lu.flusher != nil {
		p[6] = 0x01 // V_SUP: a volatile cache exists
	}
	return vpdFinish(p)
}

// vpdLimits is the Block Limits page (SBC-3 6.5.3).
func vpdLimits(t *task) []byte {
	lu := t.lu
	l := lu.cfg.Limits
	bs := lu.cfg.BlockSize
	p := make([]byte, 64)
	p[1] = vpdBlockLimits
	// WSNZ=0: WRITE SAME with zero blocks means "to the last LBA".
	p[5] = l.MaxCompareAndWriteBlocks
	// Transfers and unmaps of whole physical blocks, starting at LBA 0
	// like the physical blocks themselves (READ CAPACITY(16)), avoid
	// partial-block work below the gateway.
	physical := lu.blocksPerPhysical()
	put16(p[6:8], uint16(physical)) // OPTIMAL TRANSFER LENGTH GRANULARITY
	put32(p[8:12], l.MaxTransferBytes/bs)
	put32(p[12:16], l.OptimalTransferBytes/bs)
	if lu.discarder != nil {
		put32(p[20:24], l.MaxUnmapBlocks)
		put32(p[24:28], l.MaxUnmapDescriptors)
		put32(p[28:32], physical) // OPTIMAL UNMAP GRANULARITY
		p[32] = 0x80              // UGAVALID: UNMAP GRANULARITY ALIGNMENT 0
	}
	put64(p[36:44], uint64(l.MaxWriteSameBlocks))
	if lu.caps&capAtomicWrite != 0 {
		// Atomic writes without boundaries: the two "with atomic
		// boundary" fields stay zero.
		put32(p[44:48], lu.atomic.maxBlocks)   // MAXIMUM ATOMIC TRANSFER LENGTH
		put32(p[48:52], lu.atomic.alignment)   // ATOMIC ALIGNMENT
		put32(p[52:56], lu.atomic.granularity) // ATOMIC TRANSFER LENGTH GRANULARITY
	}
	return vpdFinish(p)
}

// vpdCharacteristics is the Block Device Characteristics page (SBC-3
// 6.5.2): a non-rotating medium.
func vpdCharacteristics(*task) []byte {
	p := make([]byte, 64)
	p[1] = vpdBlockCharacteristics
	put16(p[4:6], 0x0001)
	return vpdFinish(p)
}

// vpdProvisioning is the Logical Block Provisioning page (SBC-3 6.5.4).
func vpdProvisioning(t *task) []byte {
	p := make([]byte, 8)
	p[1] = vpdLogicalProvisioning
	if t.lu.discarder != nil {
		p[5] = 0x80 | 0x40 | 0x20 // LBPU, LBPWS, LBPWS10
		if t.lu.lbprz {
			p[5] |= 0x04 // LBPRZ
		}
		p[6] = 0x02 // PROVISIONING TYPE: thin
	}
	return vpdFinish(p)
}
