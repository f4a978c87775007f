package scsi

// Mode pages of a logical unit: one set per logical unit, shared by every
// I_T nexus (SPC-4 allows either; a shared set is what a disk behind several
// paths must present). Saved values are not supported.

// Mode page codes.
const (
	pageRWErrorRecovery byte = 0x01
	pageCaching         byte = 0x08
	pageControl         byte = 0x0a
	pageInfoExceptions  byte = 0x1c
	pageAll             byte = 0x3f
	subpageControlExt   byte = 0x01
	subpageAll          byte = 0xff
)

// Bits of LU.modeFlags.
const (
	modeWCE    uint32 = 1 << iota // caching page: write cache enabled
	modeDSense                    // control page: descriptor sense data
	modeSWP                       // control page: software write protect
	modeTAS                       // control page: task aborted status
)

// modePageDef defines one mode page: its default value (with the page
// header) and the mask of bits MODE SELECT may change.
type modePageDef struct {
	page, subpage byte
	defaults      func(lu *LU) []byte
	changeable    func(lu *LU) []byte
}

// modePageDefs lists the pages in the order MODE SENSE returns them.
var modePageDefs = []modePageDef{
	{page: pageRWErrorRecovery,
		defaults:   func(*LU) []byte { return pageBytes(pageRWErrorRecovery, 0x0a) },
		changeable: func(*LU) []byte { return pageBytes(pageRWErrorRecovery, 0x0a) }},
	{page: pageCaching,
		defaults: func(lu *LU) []byte {
			p := pageBytes(pageCaching, 0x12)
			if lu.flusher != nil {
				p[2] |= 0x04 // WCE: writes complete before they are durable
			}
			return p
		},
		changeable: func(lu *LU) []byte {
			p := pageBytes(pageCaching, 0x12)
			if lu.flusher != nil {
				p[2] |= 0x04
			}
			return p
		}},
	{page: pageControl,
		defaults: func(*LU) []byte {
			p := pageBytes(pageControl, 0x0a)
			p[2] = 0x02             // GLTSD: no log parameters to save
			p[3] = 0x10             // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
			p[5] = 0x40             // TAS
			p[8], p[9] = 0xff, 0xff // BUSY TIMEOUT PERIOD: unlimited
			return p
		},
		changeable: func(*LU) []byte {
			p := pageBytes(pageControl, 0x0a)
			p[2] = 0x04 // D_SENSE
			p[4] = 0x08 // SWP
			p[5] = 0x40 // TAS
			return p
		}},
	{page: pageControl, subpage: subpageControlExt,
		defaults:   func(*LU) []byte { return subpageBytes(pageControl, subpageControlExt, 0x1c) },
		changeable: func(*LU) []byte { return subpageBytes(pageControl, subpageControlExt, 0x1c) }},
	{page: pageInfoExceptions,
		defaults: func(*LU) []byte {
			p := pageBytes(pageInfoExceptions, 0x0a)
			p[2] = 0x08 // DEXCPT: no informational exceptions are reported
			return p
		},
		changeable: func(*LU) []byte { return pageBytes(pageInfoExceptions, 0x0a) }},
}

// pageBytes is a zeroed page-0 format page with its header.
func pageBytes(page byte, length int) []byte {
	p := make([]byte, 2+length)
	p[0], p[1] = page, byte(length)
	return p
}

// subpageBytes is a zeroed sub_page format page with its header.
func subpageBytes(page, subpage byte, length int) []byte {
	p := make([]byte, 4+length)
	p[0], p[1] = page|0x40, subpage // SPF
	put16(p[2:4], uint16(length))
	return p
}

// modePages holds the current values. Guarded by LU.mu.
type modePages struct {
	current [][]byte // parallel to modePageDefs
}

func (m *modePages) init(lu *LU) {
	m.current = make([][]byte, len(modePageDefs))
	for i, d := range modePageDefs {
		m.current[i] = d.defaults(lu)
	}
}

// find returns the index of page/subpage in modePageDefs, or -1.
func findModePage(page, subpage byte) int {
	for i, d := range modePageDefs {
		if d.page == page && d.subpage == subpage {
			return i
		}
	}
	return -1
}

// syncModeFlags recomputes LU.modeFlags from the current pages.
func (lu *LU) syncModeFlags() {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	var f uint32
	if p := lu.mode.current[findModePage(pageCaching, 0)]; p[2]&0x04 != 0 {
		f |= modeWCE
	}
	ctl := lu.mode.current[findModePage(pageControl, 0)]
	if ctl[2]&0x04 != 0 {
		f |= modeDSense
	}
	if ctl[4]&0x08 != 0 {
		f |= modeSWP
	}
	if ctl[5]&0x40 != 0 {
		f |= modeTAS
	}
	lu.modeFlags.Store(f)
}
