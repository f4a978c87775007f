package scsi

import (
	"bytes"
	"slices"
	"testing"
)

const (
	iniMasked = "iqn.2024-01.org.example:host1" // the env's nexus
	iniOther  = "iqn.2024-01.org.example:host2"
	iniAny    = "iqn.2024-01.org.example:anyone"
)

func TestMaskTableSees(t *testing.T) {
	tests := []struct {
		name      string
		masking   Masking
		initiator string
		lun       uint64
		want      bool
	}{
		{"nil masking", nil, iniMasked, 3, true},
		{"empty masking", Masking{}, iniMasked, 3, true},
		{"listed, in view", Masking{iniMasked: {0, 3}}, iniMasked, 3, true},
		{"listed, outside view", Masking{iniMasked: {0, 3}}, iniMasked, 1, false},
		{"listed with an empty view", Masking{iniMasked: {}}, iniMasked, 0, false},
		{"listed with a nil view", Masking{iniMasked: nil}, iniMasked, 0, false},
		{"not listed", Masking{iniMasked: {}}, iniAny, 7, true},
		// RFC 3722: a name differing in case is the same initiator, to
		// the view as to reservations; nothing wider folds.
		{"names compare in lower case", Masking{iniMasked: {}}, "IQN.2024-01.org.EXAMPLE:Host1", 0, false},
		{"a listed name spelt in upper case", Masking{"IQN.2024-01.org.example:HOST1": {}}, iniMasked, 0, false},
		{"no folding beyond lower case", Masking{iniMasked: {}}, "iqn.2024-01.org.example:hoſt1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newMaskTable(tt.masking).sees(tt.initiator, tt.lun); got != tt.want {
				t.Errorf("sees(%s, %d) = %v, want %v", tt.initiator, tt.lun, got, tt.want)
			}
		})
	}
}

// maskedEnv is the env with LUNs 0, 1 and 2 mapped and host1 (e.n)
// logged in with two other initiators, all unit attentions consumed.
type maskedEnv struct {
	*env
	lus         [3]*LU
	other, anyN *Nexus
}

func newMaskedEnv(t *testing.T) *maskedEnv {
	t.Helper()
	e := newEnv(t)
	m := &maskedEnv{env: e}
	m.lus[0] = e.lu
	m.lus[1] = newLUForTest(t, "disk2", "00000000000000b1")
	m.lus[2] = newLUForTest(t, "disk3", "00000000000000b2")
	e.tgt.SetLU(1, m.lus[1])
	e.tgt.SetLU(2, m.lus[2])
	m.other = e.login(iniOther, 2)
	m.anyN = e.login(iniAny, 3)
	for _, n := range []*Nexus{e.n, m.other, m.anyN} {
		m.drainUAs(n)
	}
	return m
}

// drainUAs consumes every pending unit attention of n on every LUN.
func (m *maskedEnv) drainUAs(n *Nexus) {
	for _, lu := range m.lus {
		for {
			if _, ok := lu.popUA(n); !ok {
				break
			}
		}
	}
}

// reportLUNs returns the LUN numbers REPORT LUNS gives n.
func (m *maskedEnv) reportLUNs(n *Nexus) []uint64 {
	m.t.Helper()
	r := m.execOn(n, 0, cdbReportLUNs(0, 1024), nil)
	if r.Status != StatusGood {
		m.t.Fatalf("REPORT LUNS: status %#x", r.Status)
	}
	var out []uint64
	for i := 8; i+8 <= 8+int(be32(r.Data[0:4])); i += 8 {
		out = append(out, uint64(r.Data[i+1]))
	}
	return out
}

func TestMaskingReportLUNs(t *testing.T) {
	m := newMaskedEnv(t)
	m.tgt.SetMasking(Masking{iniMasked: {0, 2}, iniOther: {}})
	for _, tt := range []struct {
		name string
		n    *Nexus
		want []uint64
	}{
		{"its view", m.n, []uint64{0, 2}},
		{"an empty view reports LUN 0 only", m.other, []uint64{0}},
		{"an initiator without a view sees every LUN", m.anyN, []uint64{0, 1, 2}},
	} {
		if got := m.reportLUNs(tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("%s: REPORT LUNS %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := m.tgt.LUNsFor(m.other); len(got) != 0 {
		t.Errorf("LUNsFor(empty view) = %v", got)
	}
	if got := m.tgt.LUNs(); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Errorf("LUNs() = %v: the target's map is not the view", got)
	}
}

// A LUN outside the view answers every command as an absent LUN does.
func TestMaskedLUNIsAbsent(t *testing.T) {
	m := newMaskedEnv(t)
	m.tgt.SetMasking(Masking{iniMasked: {0, 2}})
	m.drainUAs(m.n)
	const masked, absent = 1, 9
	for _, tt := range []struct {
		name string
		cdb  []byte
		data []byte
	}{
		{"TEST UNIT READY", cdbTUR(), nil},
		{"READ(10)", cdb10(opRead10, 0, 1), nil},
		{"WRITE(10)", cdb10(opWrite10, 0, 1), make([]byte, testBlockSize)},
		{"READ CAPACITY(10)", cdb10(opReadCapacity10, 0, 0), nil},
		{"MODE SENSE(6)", cdbModeSense6(false, 0, 0x3f, 0, 255), nil},
		{"INQUIRY", cdbInquiry(false, 0, 96), nil},
		{"INQUIRY VPD 00h", cdbInquiry(true, 0, 96), nil},
		{"INQUIRY VPD 83h", cdbInquiry(true, 0x83, 255), nil},
		{"REQUEST SENSE", cdbRequestSense(false, 252), nil},
		{"REPORT LUNS", cdbReportLUNs(0, 1024), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := m.execOn(m.n, masked, tt.cdb, tt.data)
			want := m.execOn(m.n, absent, tt.cdb, tt.data)
			if got.Status != want.Status || !bytes.Equal(got.Sense, want.Sense) || !bytes.Equal(got.Data, want.Data) {
				t.Errorf("masked LUN: %+v\nabsent LUN: %+v", got, want)
			}
		})
	}
	// The specifics: peripheral qualifier 011b, LOGICAL UNIT NOT SUPPORTED.
	if r := m.execOn(m.n, masked, cdbInquiry(false, 0, 96), nil); r.Status != StatusGood || r.Data[0] != 0x7f {
		t.Errorf("INQUIRY to a masked LUN: %#x, peripheral %#x", r.Status, r.Data[0])
	}
	r := m.execOn(m.n, masked, cdb10(opRead10, 0, 1), nil)
	if k, c := senseCode(t, r); k != senseIllegalRequest || c != ascLUNotSupported {
		t.Errorf("READ to a masked LUN: %#x/%04x", k, c)
	}
	// The same LUN works for an initiator that sees it, and the data the
	// masked initiator tried to write never reached it.
	if r := m.execOn(m.anyN, masked, cdb10(opRead10, 0, 1), nil); r.Status != StatusGood {
		t.Errorf("READ by an initiator that sees the LUN: %#x", r.Status)
	}
	if n, ok := m.tgt.DataOutLengthLUN(m.n, masked, cdb10(opWrite10, 0, 1)); ok {
		t.Errorf("DataOutLengthLUN of a masked LUN: %d, known", n)
	}
	if n, ok := m.tgt.DataOutLengthLUN(m.anyN, masked, cdb10(opWrite10, 0, 1)); !ok || n != testBlockSize {
		t.Errorf("DataOutLengthLUN of a visible LUN: %d %v", n, ok)
	}
}

func TestMaskedTaskManagement(t *testing.T) {
	m := newMaskedEnv(t)
	m.tgt.SetMasking(Masking{iniMasked: {0}})
	m.drainUAs(m.n)
	for _, fn := range []TMFunction{TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet, TMFLUReset} {
		if got, want := m.tgt.TaskManagement(m.n, fn, 1, 5), m.tgt.TaskManagement(m.n, fn, 9, 5); got != want || got != TMFLUNNotExist {
			t.Errorf("function %d to a masked LUN: %d, to an absent LUN %d, want %d", fn, got, want, TMFLUNNotExist)
		}
	}
	// The refused LOGICAL UNIT RESET did not reach LUN 1.
	if r := m.execOn(m.anyN, 1, cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("LUN 1 after a masked LU reset: %#x", r.Status)
	}
	// A target reset resets only the logical units the nexus sees.
	if got := m.tgt.TaskManagement(m.n, TMFTargetWarmReset, 0, 0); got != TMFComplete {
		t.Fatalf("target reset: %d", got)
	}
	for lun, want := range map[uint64]bool{0: true, 1: false, 2: false} {
		r := m.execOn(m.anyN, lun, cdbTUR(), nil)
		_, c := senseCode(t, r)
		if reset := r.Status == StatusCheckCondition && c == ascPowerOnReset; reset != want {
			t.Errorf("LUN %d after a target reset by a nexus that sees LUN 0 only: reset %v, want %v", lun, reset, want)
		}
	}
}

func TestMaskedExtendedCopy(t *testing.T) {
	m := newMaskedEnv(t)
	m.tgt.SetMasking(Masking{iniMasked: {0, 2}})
	m.drainUAs(m.n)
	src := fill(8*testBlockSize, 'M')
	m.good(cdb16(opWrite16, 0, 8), src)
	unmapped := newLUForTest(t, "disk4", "00000000000000b4")
	otherTarget := NewTarget("iqn.2024-01.org.example:t2", TargetOptions{Logger: quietLogger})
	elsewhere := newLUForTest(t, "disk5", "00000000000000b5")
	otherTarget.SetLU(0, elsewhere)
	copyTo := func(dst *LU) Result {
		p := xcopyParam(0, listIDNotUnique, [][]byte{identTarget(m.lus[0]), identTarget(dst)},
			[][]byte{b2bSegment(0, 1, 8, 0, 0)})
		return m.exec(xcopyCDB(len(p)), p)
	}
	copyFrom := func(src *LU) Result {
		p := xcopyParam(0, listIDNotUnique, [][]byte{identTarget(src), identTarget(m.lus[0])},
			[][]byte{b2bSegment(0, 1, 8, 0, 100)})
		return m.exec(xcopyCDB(len(p)), p)
	}
	for _, tt := range []struct {
		name string
		run  func(*LU) Result
		lu   *LU
		ok   bool
	}{
		{"to a LUN in the view", copyTo, m.lus[2], true},
		{"from a LUN in the view", copyFrom, m.lus[2], true},
		{"to a masked LUN", copyTo, m.lus[1], false},
		{"from a masked LUN", copyFrom, m.lus[1], false},
		{"to an unmapped logical unit", copyTo, unmapped, false},
		{"to a logical unit of another target", copyTo, elsewhere, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(tt.lu)
			if tt.ok {
				if r.Status != StatusGood {
					k, c := senseCode(t, r)
					t.Fatalf("status %#x %#x/%04x", r.Status, k, c)
				}
				return
			}
			if k, c := senseCode(t, r); k != senseCopyAborted || c != ascCopyTargetNotReachable {
				t.Errorf("%#x/%04x, want COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE", k, c)
			}
		})
	}
	got := make([]byte, len(src))
	if _, err := m.lus[1].Image().ReadAt(got, 0); err != nil || bytes.Equal(got, src) {
		t.Errorf("the masked LUN was written: %v", err)
	}
	if _, err := m.lus[2].Image().ReadAt(got, 0); err != nil || !bytes.Equal(got, src) {
		t.Errorf("the visible LUN was not written: %v", err)
	}
}

// A live change of the masking reports REPORTED LUNS DATA HAS CHANGED to
// exactly the nexuses whose view changed.
func TestMaskingChangeUnitAttention(t *testing.T) {
	m := newMaskedEnv(t)
	m.tgt.SetMasking(Masking{iniMasked: {0, 1}, iniOther: {}})
	for _, n := range []*Nexus{m.n, m.other, m.anyN} {
		m.drainUAs(n)
	}
	pending := func(n *Nexus, lun uint64) bool {
		t.Helper()
		r := m.execOn(n, lun, cdbTUR(), nil)
		k, c := senseCode(t, r)
		return r.Status == StatusCheckCondition && k == senseUnitAttention && c == ascReportedLUNsChanged
	}
	type step struct {
		name    string
		masking Masking
		// want lists, per nexus, the LUNs with the condition.
		want map[*Nexus][]uint64
	}
	for _, s := range []step{
		{"unchanged", Masking{iniMasked: {1, 0}, iniOther: {}}, nil},
		{"LUN 2 added to host1", Masking{iniMasked: {0, 1, 2}, iniOther: {}},
			map[*Nexus][]uint64{m.n: {0, 1}}},
		{"host2 gets its first LUN", Masking{iniMasked: {0, 1, 2}, iniOther: {2}},
			map[*Nexus][]uint64{m.other: {2}}},
		{"host1 loses LUN 0, anyone is masked", Masking{iniMasked: {1, 2}, iniOther: {2}, iniAny: {0}},
			map[*Nexus][]uint64{m.n: {1, 2}, m.anyN: {0}}},
	} {
		m.tgt.SetMasking(s.masking)
		for _, n := range []*Nexus{m.n, m.other, m.anyN} {
			for _, lun := range m.tgt.LUNsFor(n) {
				want := slices.Contains(s.want[n], lun)
				if got := pending(n, lun); got != want {
					t.Errorf("%s: %s LUN %d: condition %v, want %v", s.name, n.InitiatorName, lun, got, want)
				}
			}
			m.drainUAs(n)
		}
	}
	// REPORT LUNS clears the condition on every logical unit.
	m.tgt.SetMasking(Masking{iniMasked: {1}})
	m.reportLUNs(m.n)
	if pending(m.n, 1) {
		t.Error("REPORT LUNS left the condition pending")
	}
	// Mapping a LUN reports to the nexuses that see it, not the others.
	m.tgt.SetMasking(Masking{iniMasked: {1}, iniOther: {2, 3}})
	m.drainUAs(m.n)
	m.drainUAs(m.other)
	m.tgt.SetLU(3, newLUForTest(t, "disk6", "00000000000000b6"))
	if pending(m.n, 1) {
		t.Error("host1 does not see LUN 3 but was told its LUN inventory changed")
	}
	if !pending(m.other, 2) {
		t.Error("host2 sees the new LUN 3 but was not told")
	}
}
