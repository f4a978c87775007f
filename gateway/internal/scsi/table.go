package scsi

import (
	"fmt"
	"sort"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// dataDir is the data direction of a command.
type dataDir uint8

const (
	dirNone dataDir = iota
	dirIn           // Data-In: the device server returns data
	dirOut          // Data-Out: the initiator sends data
)

// opFlags are the per-command exemptions the dispatcher applies.
type opFlags uint16

const (
	// flagNoLU: the command runs on a LUN without a logical unit (INQUIRY,
	// REPORT LUNS, REQUEST SENSE answer there per SPC-4).
	flagNoLU opFlags = 1 << iota
	// flagKeepsUA: a pending unit attention neither blocks nor is cleared by
	// the command (SPC-4 5.14: INQUIRY, REPORT LUNS; REQUEST SENSE reports
	// the unit attention itself).
	flagKeepsUA
	// flagALUAStandby: allowed through a target port group in Standby
	// (SPC-4 5.15.2.4.4).
	flagALUAStandby
	// flagALUAAny: allowed in every asymmetric access state, including
	// Unavailable, Transitioning and Offline.
	flagALUAAny
)

// capability is an optional backend capability a command needs before it
// is offered at all (checked once at logical unit creation).
type capability uint8

const (
	capDiscard capability = 1 << iota
	capAtomicWrite
)

// handlerFunc executes one command. It returns Data-In (already cut to the
// allocation length) or an error: a *senseError for CHECK CONDITION, or a
// *statusError for other statuses.
type handlerFunc func(*task) ([]byte, error)

// opEntry describes one operation code (and service action). The same
// entry drives dispatch, reservation conflicts, unit attention and ALUA
// exemptions, reserved-bit checking and REPORT SUPPORTED OPERATION CODES.
type opEntry struct {
	name   string
	opcode byte
	sa     uint16
	hasSA  bool
	cdbLen int
	dir    dataDir
	flags  opFlags
	access pr.Access
	// usage is the CDB USAGE DATA of REPORT SUPPORTED OPERATION CODES: a
	// bit is set where the device server looks at the CDB. Every other bit
	// is reserved and a CDB that sets one ends with INVALID FIELD IN CDB.
	usage []byte
	// needs lists the backend capabilities without which the command is
	// not supported on a logical unit.
	needs capability
	// timeout is the recommended command timeout in seconds (RCTD).
	timeout uint32
	run     handlerFunc
}

// defaultTimeout is the recommended command timeout reported for commands
// without their own (seconds).
const defaultTimeout = 30

// ctl is the usage of the CONTROL byte: only NACA is evaluated (and
// refused, ACA is not supported).
const ctl = 0x04

// Usage masks shared by the block commands.
const (
	rwFlags     = 0xfa // xxPROTECT, DPO, FUA, FUA_NV
	wavFlags    = 0xf2 // WRPROTECT, DPO, BYTCHK
	verifyFlags = 0xf6 // VRPROTECT, DPO, BYTCHK(2)
	groupMask   = 0x3f // GROUP NUMBER
)

func usage(b ...byte) []byte { return b }

// opEntries is the command set of a direct-access block device.
func opEntries() []*opEntry {
	lba4 := []byte{0xff, 0xff, 0xff, 0xff}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	rw10 := func(op byte, flags byte) []byte {
		return cat([]byte{op, flags}, lba4, []byte{groupMask, 0xff, 0xff, ctl})
	}
	rw12 := func(op byte, flags byte) []byte {
		return cat([]byte{op, flags}, lba4, lba4, []byte{groupMask, ctl})
	}
	rw16 := func(op byte, flags byte) []byte {
		return cat([]byte{op, flags}, lba4, lba4, lba4, []byte{groupMask, ctl})
	}
	return []*opEntry{
		{name: "TEST UNIT READY", opcode: opTestUnitReady, cdbLen: 6, access: pr.AccessSPC2Only,
			usage: usage(opTestUnitReady, 0, 0, 0, 0, ctl), run: cmdTestUnitReady},
		{name: "REQUEST SENSE", opcode: opRequestSense, cdbLen: 6, dir: dirIn,
			flags: flagNoLU | flagKeepsUA | flagALUAAny, access: pr.AccessAllowed,
			usage: usage(opRequestSense, 0x01, 0, 0, 0xff, ctl), run: cmdRequestSense},
		{name: "READ(6)", opcode: opRead6, cdbLen: 6, dir: dirIn, access: pr.AccessRead,
			usage: usage(opRead6, 0x1f, 0xff, 0xff, 0xff, ctl), run: cmdRead},
		{name: "WRITE(6)", opcode: opWrite6, cdbLen: 6, dir: dirOut, access: pr.AccessWrite,
			usage: usage(opWrite6, 0x1f, 0xff, 0xff, 0xff, ctl), run: cmdWrite},
		{name: "INQUIRY", opcode: opInquiry, cdbLen: 6, dir: dirIn,
			flags: flagNoLU | flagKeepsUA | flagALUAAny, access: pr.AccessAllowed,
			usage: usage(opInquiry, 0x01, 0xff, 0xff, 0xff, ctl), run: cmdInquiry},
		{name: "MODE SELECT(6)", opcode: opModeSelect6, cdbLen: 6, dir: dirOut,
			flags: flagALUAStandby, access: pr.AccessOther,
			usage: usage(opModeSelect6, 0x11, 0, 0, 0xff, ctl), run: cmdModeSelect},
		{name: "RESERVE(6)", opcode: opReserve6, cdbLen: 6, access: pr.AccessAllowed,
			usage: usage(opReserve6, 0, 0, 0, 0, ctl), run: cmdReserve},
		{name: "RELEASE(6)", opcode: opRelease6, cdbLen: 6, access: pr.AccessAllowed,
			usage: usage(opRelease6, 0, 0, 0, 0, ctl), run: cmdRelease},
		{name: "MODE SENSE(6)", opcode: opModeSense6, cdbLen: 6, dir: dirIn,
			flags: flagALUAStandby, access: pr.AccessRead,
			usage: usage(opModeSense6, 0x08, 0xff, 0xff, 0xff, ctl), run: cmdModeSense},
		{name: "START STOP UNIT", opcode: opStartStopUnit, cdbLen: 6, access: pr.AccessOther,
			usage: usage(opStartStopUnit, 0x01, 0, 0x0f, 0xf7, ctl), run: cmdStartStopUnit},
		{name: "PREVENT ALLOW MEDIUM REMOVAL", opcode: opPreventAllow, cdbLen: 6, access: pr.AccessOther,
			usage: usage(opPreventAllow, 0, 0, 0, 0x03, ctl), run: cmdPreventAllow},
		{name: "READ CAPACITY(10)", opcode: opReadCapacity10, cdbLen: 10, dir: dirIn,
			flags: flagALUAStandby, access: pr.AccessAllowed,
			usage: cat([]byte{opReadCapacity10, 0}, lba4, []byte{0, 0, 0x01, ctl}), run: cmdReadCapacity10},
		{name: "READ(10)", opcode: opRead10, cdbLen: 10, dir: dirIn, access: pr.AccessRead,
			usage: rw10(opRead10, rwFlags), run: cmdRead},
		{name: "WRITE(10)", opcode: opWrite10, cdbLen: 10, dir: dirOut, access: pr.AccessWrite,
			usage: rw10(opWrite10, rwFlags), run: cmdWrite},
		{name: "WRITE AND VERIFY(10)", opcode: opWriteVerify10, cdbLen: 10, dir: dirOut, access: pr.AccessWrite,
			usage: rw10(opWriteVerify10, wavFlags), run: cmdWrite},
		{name: "VERIFY(10)", opcode: opVerify10, cdbLen: 10, dir: dirOut, access: pr.AccessRead,
			usage: rw10(opVerify10, verifyFlags), run: cmdVerify},
		{name: "PRE-FETCH(10)", opcode: opPrefetch10, cdbLen: 10, access: pr.AccessRead,
			usage: rw10(opPrefetch10, 0x02), run: cmdPrefetch},
		{name: "SYNCHRONIZE CACHE(10)", opcode: opSyncCache10, cdbLen: 10, access: pr.AccessWrite,
			usage: rw10(opSyncCache10, 0x06), run: cmdSyncCache},
		{name: "WRITE SAME(10)", opcode: opWriteSame10, cdbLen: 10, dir: dirOut, access: pr.AccessWrite,
			usage: rw10(opWriteSame10, 0xf8), timeout: 120, run: cmdWriteSame},
		{name: "UNMAP", opcode: opUnmap, cdbLen: 10, dir: dirOut, access: pr.AccessWrite, needs: capDiscard,
			usage: usage(opUnmap, 0x01, 0, 0, 0, 0, groupMask, 0xff, 0xff, ctl), timeout: 120, run: cmdUnmap},
		{name: "MODE SELECT(10)", opcode: opModeSelect10, cdbLen: 10, dir: dirOut,
			flags: flagALUAStandby, access: pr.AccessOther,
			usage: usage(opModeSelect10, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, ctl), run: cmdModeSelect},
		{name: "RESERVE(10)", opcode: opReserve10, cdbLen: 10, access: pr.AccessAllowed,
			usage: usage(opReserve10, 0, 0, 0, 0, 0, 0, 0, 0, ctl), run: cmdReserve},
		{name: "RELEASE(10)", opcode: opRelease10, cdbLen: 10, access: pr.AccessAllowed,
			usage: usage(opRelease10, 0, 0, 0, 0, 0, 0, 0, 0, ctl), run: cmdRelease},
		{name: "MODE SENSE(10)", opcode: opModeSense10, cdbLen: 10, dir: dirIn,
			flags: flagALUAStandby, access: pr.AccessRead,
			usage: usage(opModeSense10, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, ctl), run: cmdModeSense},
		prIn(saPRInReadKeys, "PERSISTENT RESERVE IN (READ KEYS)"),
		prIn(saPRInReadRes, "PERSISTENT RESERVE IN (READ RESERVATION)"),
		prIn(saPRInReportCaps, "PERSISTENT RESERVE IN (REPORT CAPABILITIES)"),
		prIn(saPRInReadFull, "PERSISTENT RESERVE IN (READ FULL STATUS)"),
		prOut(0x00, "PERSISTENT RESERVE OUT (REGISTER)"),
		prOut(0x01, "PERSISTENT RESERVE OUT (RESERVE)"),
		prOut(0x02, "PERSISTENT RESERVE OUT (RELEASE)"),
		prOut(0x03, "PERSISTENT RESERVE OUT (CLEAR)"),
		prOut(0x04, "PERSISTENT RESERVE OUT (PREEMPT)"),
		prOut(0x05, "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)"),
		prOut(0x06, "PERSISTENT RESERVE OUT (REGISTER AND IGNORE EXISTING KEY)"),
		prOut(0x07, "PERSISTENT RESERVE OUT (REGISTER AND MOVE)"),
		{name: "EXTENDED COPY(LID1)", opcode: opThirdPartyCopyOut, sa: saExtendedCopyLID1, hasSA: true,
			cdbLen: 16, dir: dirOut, access: pr.AccessWrite, timeout: 120,
			usage: cat([]byte{opThirdPartyCopyOut, 0x1f}, make([]byte, 8), lba4, []byte{0, ctl}), run: cmdExtendedCopy},
		copyIn(saCopyStatusLID1, "RECEIVE COPY STATUS(LID1)", 0xff, cmdCopyStatus),
		copyIn(saCopyOpParams, "RECEIVE COPY OPERATING PARAMETERS", 0, cmdCopyOperatingParameters),
		copyIn(saCopyFailedSegments, "RECEIVE COPY FAILURE DETAILS(LID1)", 0xff, cmdCopyFailureDetails),
		{name: "READ(16)", opcode: opRead16, cdbLen: 16, dir: dirIn, access: pr.AccessRead,
			usage: rw16(opRead16, rwFlags), run: cmdRead},
		{name: "COMPARE AND WRITE", opcode: opCompareAndWrite, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			usage: cat([]byte{opCompareAndWrite, rwFlags}, lba4, lba4, []byte{0, 0, 0, 0xff, groupMask, ctl}),
			run:   cmdCompareAndWrite},
		{name: "WRITE(16)", opcode: opWrite16, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			usage: rw16(opWrite16, rwFlags), run: cmdWrite},
		{name: "ORWRITE(16)", opcode: opOrWrite16, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			usage: rw16(opOrWrite16, rwFlags), run: cmdOrWrite},
		{name: "WRITE AND VERIFY(16)", opcode: opWriteVerify16, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			usage: rw16(opWriteVerify16, wavFlags), run: cmdWrite},
		{name: "VERIFY(16)", opcode: opVerify16, cdbLen: 16, dir: dirOut, access: pr.AccessRead,
			usage: rw16(opVerify16, verifyFlags), run: cmdVerify},
		{name: "PRE-FETCH(16)", opcode: opPrefetch16, cdbLen: 16, access: pr.AccessRead,
			usage: rw16(opPrefetch16, 0x02), run: cmdPrefetch},
		{name: "SYNCHRONIZE CACHE(16)", opcode: opSyncCache16, cdbLen: 16, access: pr.AccessWrite,
			usage: rw16(opSyncCache16, 0x06), run: cmdSyncCache},
		{name: "WRITE SAME(16)", opcode: opWriteSame16, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			usage: rw16(opWriteSame16, 0xf9), timeout: 120, run: cmdWriteSame},
		{name: "WRITE ATOMIC(16)", opcode: opWriteAtomic16, cdbLen: 16, dir: dirOut, access: pr.AccessWrite,
			needs: capAtomicWrite, run: cmdWriteAtomic,
			// WRPROTECT, DPO, FUA; the ATOMIC BOUNDARY field stays reserved
			// (MAXIMUM ATOMIC BOUNDARY SIZE 0).
			usage: cat([]byte{opWriteAtomic16, 0xf8}, lba4, lba4, []byte{0, 0, 0xff, 0xff, groupMask, ctl})},
		{name: "READ CAPACITY(16)", opcode: opServiceActionIn16, sa: saReadCapacity16, hasSA: true,
			cdbLen: 16, dir: dirIn, flags: flagALUAStandby, access: pr.AccessAllowed,
			usage: cat([]byte{opServiceActionIn16, 0x1f}, lba4, lba4, lba4, []byte{0x01, ctl}), run: cmdReadCapacity16},
		{name: "GET LBA STATUS", opcode: opServiceActionIn16, sa: saGetLBAStatus, hasSA: true,
			cdbLen: 16, dir: dirIn, access: pr.AccessRead,
			usage: cat([]byte{opServiceActionIn16, 0x1f}, lba4, lba4, lba4, []byte{0, ctl}), run: cmdGetLBAStatus},
		{name: "REPORT LUNS", opcode: opReportLUNs, cdbLen: 12, dir: dirIn,
			flags: flagNoLU | flagKeepsUA | flagALUAAny, access: pr.AccessAllowed,
			usage: cat([]byte{opReportLUNs, 0, 0xff, 0, 0, 0}, lba4, []byte{0, ctl}), run: cmdReportLUNs},
		maintIn(saReportTPG, "REPORT TARGET PORT GROUPS", usage(0xe0, 0, 0, 0, 0), cmdReportTargetPortGroups),
		maintIn(saReportOpcodes, "REPORT SUPPORTED OPERATION CODES", usage(0, 0x87, 0xff, 0xff, 0xff), cmdReportOpcodes),
		maintIn(saReportTMFs, "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", usage(0, 0x80, 0, 0, 0), cmdReportTMFs),
		{name: "READ(12)", opcode: opRead12, cdbLen: 12, dir: dirIn, access: pr.AccessRead,
			usage: rw12(opRead12, rwFlags), run: cmdRead},
		{name: "WRITE(12)", opcode: opWrite12, cdbLen: 12, dir: dirOut, access: pr.AccessWrite,
			usage: rw12(opWrite12, rwFlags), run: cmdWrite},
		{name: "WRITE AND VERIFY(12)", opcode: opWriteVerify12, cdbLen: 12, dir: dirOut, access: pr.AccessWrite,
			usage: rw12(opWriteVerify12, wavFlags), run: cmdWrite},
		{name: "VERIFY(12)", opcode: opVerify12, cdbLen: 12, dir: dirOut, access: pr.AccessRead,
			usage: rw12(opVerify12, verifyFlags), run: cmdVerify},
		{name: "READ DEFECT DATA(10)", opcode: opReadDefectData10, cdbLen: 10, dir: dirIn, access: pr.AccessRead,
			usage: usage(opReadDefectData10, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, ctl), run: cmdReadDefectData},
		{name: "READ DEFECT DATA(12)", opcode: opReadDefectData12, cdbLen: 12, dir: dirIn, access: pr.AccessRead,
			usage: cat([]byte{opReadDefectData12, 0x1f}, lba4, lba4, []byte{0, ctl}), run: cmdReadDefectData},
	}
}

func prIn(sa uint16, name string) *opEntry {
	return &opEntry{name: name, opcode: opPersistentIn, sa: sa, hasSA: true, cdbLen: 10, dir: dirIn,
		flags: flagALUAStandby, access: pr.AccessAllowed,
		usage: usage(opPersistentIn, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, ctl), run: cmdPersistentReserveIn}
}

func prOut(sa uint16, name string) *opEntry {
	return &opEntry{name: name, opcode: opPersistentOut, sa: sa, hasSA: true, cdbLen: 10, dir: dirOut,
		flags: flagALUAStandby, access: pr.AccessAllowed,
		usage: usage(opPersistentOut, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, ctl), run: cmdPersistentReserveOut}
}

// copyIn builds a THIRD-PARTY COPY IN entry; listID is the usage of the
// LIST IDENTIFIER byte.
func copyIn(sa uint16, name string, listID byte, run handlerFunc) *opEntry {
	return &opEntry{name: name, opcode: opThirdPartyCopyIn, sa: sa, hasSA: true, cdbLen: 16, dir: dirIn,
		access: pr.AccessAllowed,
		usage:  usage(opThirdPartyCopyIn, 0x1f, listID, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl), run: run}
}

// maintIn builds a MAINTENANCE IN entry; head is the usage of CDB bytes 1
// to 5 beyond the service action (bytes 6-9 are the allocation length).
func maintIn(sa uint16, name string, head []byte, run handlerFunc) *opEntry {
	u := usage(opMaintenanceIn, 0x1f|head[0], head[1], head[2], head[3], head[4], 0xff, 0xff, 0xff, 0xff, 0, ctl)
	return &opEntry{name: name, opcode: opMaintenanceIn, sa: sa, hasSA: true, cdbLen: 12, dir: dirIn,
		flags: flagALUAAny, access: pr.AccessAllowed, usage: u, run: run}
}

// opSlot holds the entry of an opcode, or its service actions.
type opSlot struct {
	entry *opEntry
	sas   map[uint16]*opEntry
}

var (
	// opTable indexes the command set by operation code.
	opTable [256]opSlot
	// opList is the command set in REPORT SUPPORTED OPERATION CODES order.
	opList []*opEntry
)

func init() {
	opList = opEntries()
	sort.SliceStable(opList, func(i, j int) bool {
		if opList[i].opcode != opList[j].opcode {
			return opList[i].opcode < opList[j].opcode
		}
		return opList[i].sa < opList[j].sa
	})
	for _, e := range opList {
		if err := e.validate(); err != nil {
			panic(err) // a broken table is a programming error caught by any test
		}
		s := &opTable[e.opcode]
		if !e.hasSA {
			s.entry = e
			continue
		}
		if s.sas == nil {
			s.sas = make(map[uint16]*opEntry)
		}
		s.sas[e.sa] = e
	}
}

// validate checks the invariants the dispatcher relies on.
func (e *opEntry) validate() error {
	if e.name == "" || e.run == nil {
		return fmt.Errorf("opcode %#02x: entry without name or handler", e.opcode)
	}
	if len(e.usage) != e.cdbLen || e.usage[0] != e.opcode {
		return fmt.Errorf("%s: usage data must be %d bytes starting with the opcode", e.name, e.cdbLen)
	}
	if want := cdbLenOfGroup(e.opcode); want != 0 && want != e.cdbLen {
		return fmt.Errorf("%s: CDB length %d, opcode group says %d", e.name, e.cdbLen, want)
	}
	if _, sa := serviceActionOf([]byte{e.opcode, 0}); sa != e.hasSA {
		return fmt.Errorf("%s: service action flag disagrees with the opcode", e.name)
	}
	if e.hasSA && e.usage[saFieldByte(e.opcode)]&0x1f != 0x1f {
		return fmt.Errorf("%s: usage data must cover the service action", e.name)
	}
	return nil
}

// cdbLenOfGroup is the CDB length implied by the group code (SPC-4
// 4.2.5.1); 0 for the variable-length and vendor groups.
func cdbLenOfGroup(opcode byte) int {
	switch opcode >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 0
}

// lookupOp finds the entry for cdb. unknownSA reports an opcode with
// service actions whose service action is not supported.
func lookupOp(cdb []byte) (e *opEntry, unknownSA bool) {
	s := &opTable[cdb[0]]
	if s.entry != nil {
		return s.entry, false
	}
	if s.sas == nil {
		return nil, false
	}
	sa, _ := serviceActionOf(cdb)
	if e := s.sas[sa]; e != nil {
		return e, false
	}
	return nil, true
}

// supportedBy reports whether lu offers the command (capabilities).
func (e *opEntry) supportedBy(lu *LU) bool {
	return e.needs == 0 || lu == nil || lu.caps&e.needs == e.needs
}

// checkReserved verifies that the CDB sets no bit the command does not use,
// and that the CONTROL byte asks for nothing unsupported.
func (e *opEntry) checkReserved(cdb []byte) *senseError {
	for i := 1; i < e.cdbLen; i++ {
		if extra := cdb[i] &^ e.usage[i]; extra != 0 {
			return invalidCDB(i, highBit(extra))
		}
	}
	if cdb[e.cdbLen-1]&0x04 != 0 { // NACA: ACA is not supported
		return invalidCDB(e.cdbLen-1, 2)
	}
	return nil
}

// highBit is the index of the most significant set bit of b (b != 0).
func highBit(b byte) int {
	for i := 7; i >= 0; i-- {
		if b&(1<<i) != 0 {
			return i
		}
	}
	return -1
}
