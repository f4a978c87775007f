package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateISCSIName(t *testing.T) {
	good := []string{
		"iqn.2003-01.org.linux-iscsi.host.x8664:sn.1234abcd",
		"iqn.1991-05.com.microsoft:win-host-01",
		"iqn.1998-01.com.vmware:esx-01-5c2f1a2b",
		"iqn.1993-08.org.debian:01:abcdef123456",
		"iqn.2001-04.com.example",
		"iqn.2001-04.com.example:storage:diskarrays-sn-a8675309",
		"eui.02004567a425678d",
		"naa.52004567ba64678d",
		"naa.62004567ba64678d0123456789abcdef",
		"iqn.2001-04.com.x:" + strings.Repeat("a", maxISCSINameLen-len("iqn.2001-04.com.x:")),
	}
	for _, name := range good {
		if err := ValidateISCSIName(name); err != nil {
			t.Errorf("ValidateISCSIName(%q) = %v, want nil", name, err)
		}
	}
	bad := []string{
		"",
		"iqn",
		"iqn.",
		"iqn.2001-04",
		"iqn.2001-04.",
		"iqn.01-04.com.x",
		"iqn.2001-4.com.x",
		"iqn.2001-00.com.x",
		"iqn.2001-13.com.x",
		"iqn.2001_04.com.x",
		"iqn.2001-04.com..x",
		"iqn.2001-04.:x",
		"iqn.2001-04.com.x:",
		"iqn.2001-04.com.example:UPPER",
		"IQN.2001-04.com.x",
		" iqn.2001-04.com.x",
		"iqn.2001-04.com.ex_ample",
		"iqn.2001-04.com.ex ample",
		"iqn.2001-04.com.x/y",
		"iqn.2001-04.com.x:é",
		"iqn.2001-04.com.x:" + strings.Repeat("a", maxISCSINameLen),
		"eui.02004567A425678D",
		"eui.0200",
		"eui.02004567a425678g",
		"eui.02004567a425678d00",
		"naa.123",
		"naa.52004567ba64678d0",
		"foo.bar",
	}
	for _, name := range bad {
		err := ValidateISCSIName(name)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateISCSIName(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCanonicalISCSIName(t *testing.T) {
	if got := CanonicalISCSIName(" eui.02004567A425678D\n"); got != "eui.02004567a425678d" {
		t.Errorf("CanonicalISCSIName = %q", got)
	}
	if err := ValidateISCSIName(CanonicalISCSIName("IQN.2001-04.COM.Example:Host")); err != nil {
		t.Errorf("canonical form rejected: %v", err)
	}
}

func FuzzValidateISCSIName(f *testing.F) {
	for _, s := range []string{"iqn.2001-04.com.example:x", "eui.02004567a425678d", "naa.52004567ba64678d", "iqn.2001-13.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateISCSIName(name) != nil {
			return
		}
		// A valid name must be usable as one key segment as stored.
		if len(name) > maxISCSINameLen || CanonicalISCSIName(name) != name || strings.ContainsAny(name, "/ ") {
			t.Fatalf("accepted %q", name)
		}
		if ref := parseKey(TargetKey(name)); ref.kind != kindTarget || ref.target != name {
			t.Fatalf("target key of %q does not parse back: %+v", name, ref)
		}
	})
}
