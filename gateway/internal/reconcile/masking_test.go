package reconcile

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func view(ids ...uint64) *[]uint64 { return &ids }

func TestMasking(t *testing.T) {
	const a, b = "iqn.2024-01.org.example:a", "iqn.2024-01.org.example:b"
	tests := []struct {
		name string
		acls []config.ACL
		want scsi.Masking
	}{
		{"no ACLs", nil, scsi.Masking{}},
		{"ACL without a list sees every LUN", []config.ACL{{InitiatorIQN: a}}, scsi.Masking{}},
		{"explicit list", []config.ACL{{InitiatorIQN: a, LUNs: view(0, 2)}}, scsi.Masking{a: {0, 2}}},
		{"empty list sees none", []config.ACL{{InitiatorIQN: a, LUNs: view()}, {InitiatorIQN: b}},
			scsi.Masking{a: {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := masking(config.Target{ACLs: tt.acls})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("masking = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// A view change applied by the reconciler keeps every session and tells
// the initiators whose view changed.
func TestApplyViewChangeLive(t *testing.T) {
	const (
		iqn  = "iqn.2024-01.org.example:t"
		hA   = "iqn.2024-01.org.example:a"
		hB   = "iqn.2024-01.org.example:b"
		size = 1 << 20
	)
	log := slog.New(slog.DiscardHandler)
	srv := iscsi.NewServer(iscsi.Options{Logger: log, NopInInterval: -1})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	r := New(Options{Server: srv, Logger: log,
		Open: func(config.Disk) (rbdbackend.Image, error) { return rbdbackend.NewMemoryImage(size), nil }})
	t.Cleanup(r.Close)
	cfg := func(viewA, viewB *[]uint64) *config.Config {
		c := &config.Config{
			Portals: []string{l.Addr().String()},
			Disks: []config.Disk{{Name: "d0", Backend: "memory", Size: size}, {Name: "d1", Backend: "memory", Size: size},
				{Name: "d2", Backend: "memory", Size: size}},
			Targets: []config.Target{{IQN: iqn, TPGT: 1,
				LUNs: []config.LUN{{ID: 0, Disk: "d0"}, {ID: 1, Disk: "d1"}, {ID: 2, Disk: "d2"}},
				ACLs: []config.ACL{{InitiatorIQN: hA, LUNs: viewA}, {InitiatorIQN: hB, LUNs: viewB}}}},
		}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := r.Apply(cfg(view(0), view(1, 2))); err != nil {
		t.Fatal(err)
	}
	login := func(name string) *iscsitest.Initiator {
		in, err := iscsitest.Dial(l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		in.Timeout = 5 * time.Second
		t.Cleanup(func() { in.Close() })
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: name, TargetName: iqn}); err != nil {
			t.Fatal(err)
		}
		return in
	}
	// tur returns the ASC/ASCQ of TEST UNIT READY to lun, 0 for GOOD.
	tur := func(in *iscsitest.Initiator, lun uint64) uint16 {
		t.Helper()
		res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: make([]byte, 6)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == 0 {
			return 0
		}
		return binary.BigEndian.Uint16(res.Sense[12:14])
	}
	report := func(in *iscsitest.Initiator) []uint64 {
		t.Helper()
		cdb := make([]byte, 12)
		cdb[0] = 0xa0
		binary.BigEndian.PutUint32(cdb[6:], 1024)
		res, err := in.Do(&iscsitest.Cmd{CDB: cdb, Read: true, EDTL: 1024})
		if err != nil || res.Status != 0 {
			t.Fatalf("REPORT LUNS: %v %+v", err, res)
		}
		var out []uint64
		for i := 8; i < 8+int(binary.BigEndian.Uint32(res.Data)); i += 8 {
			out = append(out, uint64(res.Data[i+1]))
		}
		return out
	}
	a, b := login(hA), login(hB)
	for in, luns := range map[*iscsitest.Initiator][]uint64{a: {0}, b: {1, 2}} {
		if got := report(in); !slices.Equal(got, luns) {
			t.Fatalf("REPORT LUNS %v, want %v", got, luns)
		}
		for _, lun := range luns {
			if got := tur(in, lun); got != 0x2900 {
				t.Fatalf("first TEST UNIT READY on LUN %d: %04x", lun, got)
			}
		}
	}
	if tur(a, 1) != 0x2500 {
		t.Fatal("host A reaches LUN 1 before the change")
	}

	// A gains LUN 1; B's view is unchanged.
	if err := r.Apply(cfg(view(0, 1), view(1, 2))); err != nil {
		t.Fatal(err)
	}
	if got := tur(a, 0); got != 0x3f0e {
		t.Errorf("host A: %04x, want REPORTED LUNS DATA HAS CHANGED", got)
	}
	if got := tur(b, 1); got != 0 {
		t.Errorf("host B, whose view did not change: %04x", got)
	}
	if got := report(a); !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("host A after the change: %v", got)
	}
	// The new LUN still holds the reset condition of A's login.
	if got := tur(a, 1); got != 0x2900 {
		t.Errorf("host A on its new LUN: %04x, want POWER ON, RESET", got)
	}
	if got := tur(a, 1); got != 0 {
		t.Errorf("host A on its new LUN: %04x", got)
	}
	// B loses every LUN: an explicit empty view.
	if err := r.Apply(cfg(view(0, 1), view())); err != nil {
		t.Fatal(err)
	}
	if got := report(b); !slices.Equal(got, []uint64{0}) || tur(b, 1) != 0x2500 || tur(b, 0) != 0x2500 {
		t.Errorf("host B with no LUN: REPORT LUNS %v", got)
	}
	if n := len(srv.Sessions()); n != 2 {
		t.Errorf("%d sessions after the view changes, want 2", n)
	}
}
