package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

func TestValidateCHAP(t *testing.T) {
	const s12, s16 = "abcdefghijkl", "abcdefghijklmnop"
	tests := []struct {
		name string
		chap *config.CHAP
		ok   bool
	}{
		{"none", nil, true},
		{"12-char secret", &config.CHAP{User: "u", Secret: s12}, true},
		{"16-char secret", &config.CHAP{User: "iqn.1991-05.com.microsoft:h", Secret: s16}, true},
		{"punctuation", &config.CHAP{User: "user@x", Secret: "a-b_c/d@e.f:g!"}, true},
		{"mutual", &config.CHAP{User: "u", Secret: s12, MutualUser: "t", MutualSecret: s16}, true},
		{"11-char secret", &config.CHAP{User: "u", Secret: "abcdefghijk"}, false},
		{"17-char secret", &config.CHAP{User: "u", Secret: s16 + "q"}, false},
		{"empty secret", &config.CHAP{User: "u"}, false},
		{"secret with space", &config.CHAP{User: "u", Secret: "abcdef ghijkl"}, false},
		{"secret non-ascii", &config.CHAP{User: "u", Secret: "abcdefghijklé"}, false},
		{"secret control char", &config.CHAP{User: "u", Secret: "abcdefghijk\x00"}, false},
		{"empty user", &config.CHAP{Secret: s12}, false},
		{"user with space", &config.CHAP{User: "a b", Secret: s12}, false},
		{"user too long", &config.CHAP{User: strings.Repeat("u", MaxCHAPUserLen+1), Secret: s12}, false},
		{"mutual user only", &config.CHAP{User: "u", Secret: s12, MutualUser: "t"}, false},
		{"mutual secret only", &config.CHAP{User: "u", Secret: s12, MutualSecret: s16}, false},
		{"mutual secret short", &config.CHAP{User: "u", Secret: s12, MutualUser: "t", MutualSecret: "short"}, false},
		{"mutual secret reused", &config.CHAP{User: "u", Secret: s12, MutualUser: "t", MutualSecret: s12}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCHAP(tt.chap, "test chap")
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateCHAP = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidateCHAP = %v, want ErrInvalid", err)
			}
			// Errors end up in API responses and logs: never the secret.
			for _, secret := range []string{tt.chap.Secret, tt.chap.MutualSecret} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestValidateEntities(t *testing.T) {
	const iqn = "iqn.2003-01.org.example:t1"
	tests := []struct {
		name string
		err  error
	}{
		{"gateway ok", validateGateway(&Gateway{Name: "gw1.example.com", Portals: []string{"10.0.0.1:3260", "[fd00::1]:3260"}})},
		{"gateway no portal", validateGateway(&Gateway{Name: "gw1"})},
		{"gateway bad name", validateGateway(&Gateway{Name: "-gw", Portals: []string{"10.0.0.1:3260"}})},
		{"gateway name with slash", validateGateway(&Gateway{Name: "a/b", Portals: []string{"10.0.0.1:3260"}})},
		{"gateway hostname portal", validateGateway(&Gateway{Name: "gw1", Portals: []string{"gw1:3260"}})},
		{"gateway any-address portal", validateGateway(&Gateway{Name: "gw1", Portals: []string{"0.0.0.0:3260"}})},
		{"gateway port 0", validateGateway(&Gateway{Name: "gw1", Portals: []string{"10.0.0.1:0"}})},
		{"gateway no port", validateGateway(&Gateway{Name: "gw1", Portals: []string{"10.0.0.1"}})},
		{"gateway duplicate portal", validateGateway(&Gateway{Name: "gw1", Portals: []string{"[::1]:3260", "[0:0::1]:3260"}})},
		{"disk ok", validateDisk(&Disk{Pool: "rbd", Image: "vm-1.disk", Size: 1 << 30})},
		{"disk 4k ok", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 8192, BlockSize: 4096, WWN: "0123456789abcdef", Serial: "SN1"})},
		{"disk zero size", validateDisk(&Disk{Pool: "rbd", Image: "a"})},
		{"disk negative size", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: -512})},
		{"disk unaligned size", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 1000})},
		{"disk odd block size", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 4096, BlockSize: 1024})},
		{"disk 512 physical ok", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 4096, PhysicalBlockSize: 512})},
		{"disk 64k physical ok", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 4096, PhysicalBlockSize: 65536})},
		{"disk physical below block", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 8192, BlockSize: 4096, PhysicalBlockSize: 512})},
		{"disk physical not a power of two", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 4096, PhysicalBlockSize: 3072})},
		{"disk physical too many blocks", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 4096, PhysicalBlockSize: 512 << 16})},
		{"disk image with slash", validateDisk(&Disk{Pool: "rbd", Image: "a/b", Size: 512})},
		{"disk image with at", validateDisk(&Disk{Pool: "rbd", Image: "a@snap", Size: 512})},
		{"disk empty pool", validateDisk(&Disk{Image: "a", Size: 512})},
		{"disk short wwn", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 512, WWN: "0123"})},
		{"disk upper wwn", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 512, WWN: "0123456789ABCDEF"})},
		{"disk serial with space", validateDisk(&Disk{Pool: "rbd", Image: "a", Size: 512, Serial: "a b"})},
		{"target ok", validateTarget(&Target{IQN: iqn, Gateways: []string{"gw2", "gw1"}})},
		{"target bad iqn", validateTarget(&Target{IQN: "iqn.bad"})},
		{"target duplicate gateway", validateTarget(&Target{IQN: iqn, Gateways: []string{"gw1", "gw1"}})},
		{"target bad chap", validateTarget(&Target{IQN: iqn, CHAP: &config.CHAP{User: "u", Secret: "short"}})},
		{"lun ok", validateLUN(&LUN{Target: iqn, ID: MaxLUNID, Disk: "rbd/a"})},
		{"lun id too high", validateLUN(&LUN{Target: iqn, ID: MaxLUNID + 1, Disk: "rbd/a"})},
		{"lun bad disk", validateLUN(&LUN{Target: iqn, ID: 0, Disk: "a"})},
		{"host ok", validateHost(&Host{Target: iqn, Initiator: "iqn.1991-05.com.microsoft:h", LUNs: []uint64{2, 0}})},
		{"host bad initiator", validateHost(&Host{Target: iqn, Initiator: "host1"})},
		{"host duplicate lun", validateHost(&Host{Target: iqn, Initiator: "eui.02004567a425678d", LUNs: []uint64{1, 1}})},
		{"group ok", validateHostGroup(&HostGroup{Target: iqn, Name: "cluster-a", Members: []string{"eui.02004567a425678d"}})},
		{"group bad name", validateHostGroup(&HostGroup{Target: iqn, Name: "a b"})},
		{"group bad member", validateHostGroup(&HostGroup{Target: iqn, Name: "g", Members: []string{"x"}})},
		{"group duplicate member", validateHostGroup(&HostGroup{Target: iqn, Name: "g", Members: []string{"eui.02004567a425678d", "eui.02004567a425678d"}})},
		{"settings ok", validateSettings(&Settings{Tuning: config.Tuning{QueueDepth: 128, MaxBurstLength: 1 << 20, FirstBurstLength: 1 << 18}})},
		{"settings first burst above max", validateSettings(&Settings{Tuning: config.Tuning{MaxBurstLength: 1 << 18, FirstBurstLength: 1 << 20}})},
		{"settings segment too small", validateSettings(&Settings{Tuning: config.Tuning{MaxRecvDataSegmentLength: 100}})},
		{"settings negative", validateSettings(&Settings{Tuning: config.Tuning{QueueDepth: -1}})},
	}
	for _, tt := range tests {
		wantOK := strings.HasSuffix(tt.name, " ok")
		if wantOK && tt.err != nil {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
		if !wantOK && !errors.Is(tt.err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tt.name, tt.err)
		}
	}
}
