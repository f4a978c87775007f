package scsi

import (
	"fmt"
	"sync"
	"testing"
)

func TestNexusNames(t *testing.T) {
	tests := []Nexus{
		{InitiatorName: "iqn.2024-01.org.example:h1", ISID: [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, TargetName: "iqn.t", TPGT: 1},
		{InitiatorName: "", TargetName: "", TPGT: 0},
		{InitiatorName: "i", ISID: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, TargetName: "t", TPGT: 0xffff},
		{InitiatorName: "i", TargetName: "t", TPGT: 0x0a0},
	}
	for i := range tests {
		n := &tests[i]
		wantI := fmt.Sprintf("%s,i,0x%012x", n.InitiatorName, n.ISID[:])
		wantT := fmt.Sprintf("%s,t,0x%04x", n.TargetName, n.TPGT)
		for range 2 { // built, then cached
			if n.InitiatorPort() != wantI || n.TargetPort() != wantT || n.Key() != wantI+"|"+wantT {
				t.Errorf("names %q %q %q, want %q %q", n.InitiatorPort(), n.TargetPort(), n.Key(), wantI, wantT)
			}
		}
	}
}

// A Nexus whose identifying fields change gets new names, and a clone
// keeps the names of the original.
func TestNexusNamesFollowChanges(t *testing.T) {
	n := &Nexus{InitiatorName: "a", TargetName: "t", TPGT: 1, RelativePortID: 3, PortGroupID: 4}
	before := n.Key()
	c := n.clone()
	n.ISID[5] = 1
	if n.Key() == before {
		t.Error("ISID change not noticed")
	}
	n.TPGT = 2
	n.InitiatorName = "b"
	n.TargetName = "u"
	if want := "b,i,0x000000000001|u,t,0x0002"; n.Key() != want {
		t.Errorf("key %q, want %q", n.Key(), want)
	}
	if c.Key() != before || c.RelativePortID != 3 || c.PortGroupID != 4 {
		t.Errorf("clone %+v with key %q", c, c.Key())
	}
}

func TestNexusNamesConcurrent(t *testing.T) {
	n := &Nexus{InitiatorName: "iqn.2024-01.org.example:h1", TargetName: "iqn.t", TPGT: 7}
	want := n.clone().Key()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if n.Key() != want {
					t.Error("key changed")
					return
				}
			}
		})
	}
	wg.Wait()
}
