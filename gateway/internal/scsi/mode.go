package scsi

import "bytes"

// MODE SENSE(6/10) and MODE SELECT(6/10) (SPC-4 6.11-6.14).

// Page control values of MODE SENSE.
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// cmdModeSense is MODE SENSE(6) and MODE SENSE(10).
func cmdModeSense(t *task) ([]byte, error) {
	cdb := t.cdb
	ten := cdb[0] == opModeSense10
	dbd := cdb[1]&0x08 != 0
	llbaa := ten && cdb[1]&0x10 != 0
	pc, page, sub := cdb[2]>>6, cdb[2]&0x3f, cdb[3]
	alloc := uint32(cdb[4])
	if ten {
		alloc = uint32(be16(cdb[7:9]))
	}
	if pc == pcSaved {
		e := newSense(senseIllegalRequest, ascSavingNotSupported)
		e.field, e.inCDB, e.bit = 2, true, 7
		return nil, e
	}
	pages, err := t.lu.modeSensePages(pc, page, sub)
	if err != nil {
		return nil, err
	}
	var desc []byte
	if !dbd {
		desc = t.lu.blockDescriptor(llbaa)
	}
	hdrLen := 4
	if ten {
		hdrLen = 8
	}
	data := make([]byte, hdrLen, hdrLen+len(desc)+len(pages))
	data = append(append(data, desc...), pages...)
	deviceSpecific := byte(0x10) // DPOFUA: DPO and FUA are supported
	if t.lu.writeProtected() != nil {
		deviceSpecific |= 0x80 // WP
	}
	if ten {
		put16(data[0:2], uint16(len(data)-2))
		data[3] = deviceSpecific
		if len(desc) == 16 {
			data[4] = 0x01 // LONGLBA
		}
		put16(data[6:8], uint16(len(desc)))
	} else {
		data[0] = byte(min(len(data)-1, 255))
		data[2] = deviceSpecific
		data[3] = byte(len(desc))
	}
	return cut(data, alloc), nil
}

// blockDescriptor is the mode parameter block descriptor: short (number of
// blocks saturated to 32 bits) or long (LLBAA).
func (lu *LU) blockDescriptor(long bool) []byte {
	if long {
		d := make([]byte, 16)
		put64(d[0:8], lu.Blocks())
		put32(d[12:16], lu.cfg.BlockSize)
		return d
	}
	d := make([]byte, 8)
	put32(d[0:4], clampU32(lu.Blocks()))
	put24(d[5:8], lu.cfg.BlockSize)
	return d
}

// modeSensePages returns the requested pages with page control pc, or
// INVALID FIELD IN CDB for a page or subpage that does not exist.
func (lu *LU) modeSensePages(pc, page, sub byte) ([]byte, error) {
	match := func(d modePageDef) bool {
		switch {
		case page == pageAll && sub == 0:
			return d.subpage == 0
		case page == pageAll && sub == subpageAll:
			return true
		case d.page != page:
			return false
		case sub == subpageAll:
			return true
		}
		return d.subpage == sub
	}
	if page == pageAll && sub != 0 && sub != subpageAll {
		return nil, invalidCDB(3, -1)
	}
	lu.mu.Lock()
	defer lu.mu.Unlock()
	var out []byte
	known := false
	for i, d := range modePageDefs {
		if d.page == page {
			known = true
		}
		if !match(d) {
			continue
		}
		switch pc {
		case pcCurrent:
			out = append(out, lu.mode.current[i]...)
		case pcChangeable:
			out = append(out, d.changeable(lu)...)
		default:
			out = append(out, d.defaults(lu)...)
		}
	}
	if out == nil {
		if !known && page != pageAll {
			return nil, invalidCDB(2, 5)
		}
		return nil, invalidCDB(3, -1)
	}
	return out, nil
}

// cmdModeSelect is MODE SELECT(6) and MODE SELECT(10). Only changeable bits
// may differ from the current values; every page is validated before any is
// changed, and other I_T nexuses get MODE PARAMETERS CHANGED.
func cmdModeSelect(t *task) ([]byte, error) {
	cdb := t.cdb
	ten := cdb[0] == opModeSelect10
	plen := uint64(cdb[4])
	if ten {
		plen = uint64(be16(cdb[7:9]))
	}
	if cdb[1]&0x01 != 0 { // SP: saving is not supported
		return nil, invalidCDB(1, 0)
	}
	if plen == 0 {
		return nil, nil
	}
	if cdb[1]&0x10 == 0 { // PF=0: vendor specific page format
		return nil, invalidCDB(1, 4)
	}
	param, err := t.dataOut(plen)
	if err != nil {
		return nil, err
	}
	changed, err := t.lu.modeSelect(param, ten)
	if err != nil {
		return nil, err
	}
	if changed {
		t.lu.syncModeFlags()
		t.lu.queueUA(ascModeParametersChanged, t.nexus)
	}
	return nil, nil
}

// modeSelect validates and applies a MODE SELECT parameter list.
func (lu *LU) modeSelect(param []byte, ten bool) (bool, error) {
	hdrLen := 4
	if ten {
		hdrLen = 8
	}
	if len(param) < hdrLen {
		return false, errParamListLength()
	}
	mediumType := 1
	if ten {
		mediumType = 2
	}
	if param[mediumType] != 0 {
		return false, invalidParam(mediumType, -1)
	}
	bdl, bdlField := int(param[3]), 3
	if ten {
		bdl, bdlField = int(be16(param[6:8])), 6
	}
	long := ten && param[4]&0x01 != 0
	switch {
	case bdl == 0:
	case bdl == 8 && !long, bdl == 16 && long:
		if len(param) < hdrLen+bdl {
			return false, errParamListLength()
		}
		d := param[hdrLen : hdrLen+bdl]
		blockLen := be24(d[5:8])
		field := hdrLen + 5
		if long {
			blockLen, field = be32(d[12:16]), hdrLen+12
		}
		if blockLen != lu.cfg.BlockSize {
			return false, invalidParam(field, -1) // formatting is not supported
		}
	default:
		return false, invalidParam(bdlField, -1)
	}

	lu.mu.Lock()
	defer lu.mu.Unlock()
	staged := make(map[int][]byte)
	for off := hdrLen + bdl; off < len(param); {
		if len(param)-off < 2 {
			return false, errParamListLength()
		}
		if param[off]&0x80 != 0 { // PS is reserved in MODE SELECT
			return false, invalidParam(off, 7)
		}
		page, sub, length := param[off]&0x3f, byte(0), int(param[off+1])+2
		if param[off]&0x40 != 0 { // SPF: sub_page format
			if len(param)-off < 4 {
				return false, errParamListLength()
			}
			sub, length = param[off+1], int(be16(param[off+2:off+4]))+4
		}
		if len(param)-off < length {
			return false, errParamListLength()
		}
		idx := findModePage(page, sub)
		if idx < 0 {
			return false, invalidParam(off, 5)
		}
		cur := lu.mode.current[idx]
		if length != len(cur) {
			return false, invalidParam(off+1, -1)
		}
		mask := modePageDefs[idx].changeable(lu)
		next := param[off : off+length]
		hdr := 2
		if sub != 0 || param[off]&0x40 != 0 {
			hdr = 4
		}
		for i := hdr; i < length; i++ {
			if bad := (next[i] ^ cur[i]) &^ mask[i]; bad != 0 {
				return false, invalidParam(off+i, highBit(bad))
			}
		}
		staged[idx] = bytes.Clone(next)
		off += length
	}
	changed := false
	for idx, next := range staged {
		cur := lu.mode.current[idx]
		next[0] = cur[0] // keep our header (PS clear, SPF as defined)
		if !bytes.Equal(cur, next) {
			lu.mode.current[idx] = next
			changed = true
		}
	}
	return changed, nil
}
