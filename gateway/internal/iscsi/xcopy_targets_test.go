package iscsi

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// An initiator of one target names, in an EXTENDED COPY, the logical unit
// of another target of the same gateway (whose designator it learned
// somehow): the copy is refused as one naming an unknown device, and
// neither image changes.
func TestExtendedCopyOtherTarget(t *testing.T) {
	e := newEnv(t)
	const otherIQN = "iqn.2024-01.org.example:tenant2"
	otherImg := rbdbackend.NewMemoryImage(4 << 20)
	otherDev := scsi.NewTarget(otherIQN, scsi.TargetOptions{Logger: slog.New(e.logs)})
	lu, err := scsi.NewLU(otherImg, scsi.LUConfig{Name: "tenant2-disk", BlockSize: testBlockSize,
		WWN: "00000000000000c2", Logger: slog.New(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lu.Close)
	otherDev.SetLU(0, lu)
	if err := e.srv.SetTarget(TargetSpec{IQN: otherIQN, Device: otherDev, TPGT: 1, RelativePortID: 1, PortGroupID: 1,
		Access: func(string) (bool, *login.Credentials) { return true, nil }}); err != nil {
		t.Fatal(err)
	}

	// The tenant of the other target writes its data; the attacker learns
	// that logical unit's designator (VPD 83h is no secret).
	tenant := e.dial()
	if err := tenant.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:tenant2-host", TargetName: otherIQN}); err != nil {
		t.Fatal(err)
	}
	clearUnitAttention(t, tenant)
	secret := pattern(8*testBlockSize, 0x5a)
	write10(t, tenant, 0, secret)
	foreign := naaOf(t, tenant, 0)

	in := e.login()
	mine := pattern(8*testBlockSize, 0xa5)
	write10(t, in, 0, mine)
	own := naaOf(t, in, 0)

	otherBefore := make([]byte, 128*testBlockSize)
	if _, err := otherImg.ReadAt(otherBefore, 0); err != nil {
		t.Fatal(err)
	}
	ownBefore := e.imageBytes(0, 128*testBlockSize)

	for _, tt := range []struct {
		name     string
		src, dst []byte
	}{
		{"into the other target's logical unit", own, foreign},
		{"out of the other target's logical unit", foreign, own},
		{"within the other target", foreign, foreign},
	} {
		res := xcopy(t, in, 0, tt.src, tt.dst)
		if k, asc, ascq := senseOf(t, res); k != 0x0a || asc != 0x0d || ascq != 0x02 {
			t.Errorf("%s: sense %#x %#x/%#x, want COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0Dh/02h)", tt.name, k, asc, ascq)
		}
	}

	otherAfter := make([]byte, len(otherBefore))
	if _, err := otherImg.ReadAt(otherAfter, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(otherAfter, otherBefore) {
		t.Error("the other target's image changed")
	}
	if !bytes.Equal(e.imageBytes(0, len(ownBefore)), ownBefore) {
		t.Error("the initiator's own image changed (the other target's data was copied in)")
	}
	// The copy itself works within the initiator's own view.
	if res := xcopy(t, in, 0, own, own); res.Status != 0 {
		t.Fatalf("copy within the own logical unit: status %#x sense % x", res.Status, res.Sense)
	}
	equalBytes(t, "copied blocks", e.imageBytes(64*testBlockSize, len(mine)), mine)
}
