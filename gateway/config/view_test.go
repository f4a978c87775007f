package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const viewDoc = `
portals: ["127.0.0.1:3260"]
disks:
  - {name: d1, backend: memory, size: 1048576}
  - {name: d2, backend: memory, size: 1048576}
targets:
  - iqn: iqn.2024-01.io.rbdgw:t1
    luns: [{id: 0, disk: d1}, {id: 3, disk: d2}]
    acls: [{initiator: "iqn.2024-01.io.example:h1"ACL}]
`

func TestACLView(t *testing.T) {
	tests := []struct {
		name    string
		acl     string // appended inside the ACL's flow mapping
		wantAll bool
		want    []uint64
		err     string
	}{
		{"absent: every LUN", "", true, nil, ""},
		{"null: every LUN", ", luns: null", true, nil, ""},
		{"empty: none", ", luns: []", false, []uint64{}, ""},
		{"explicit", ", luns: [3]", false, []uint64{3}, ""},
		{"both", ", luns: [3, 0]", false, []uint64{3, 0}, ""},
		{"unknown LUN", ", luns: [1]", false, nil, "has no LUN 1"},
		{"listed twice", ", luns: [0, 0]", false, nil, "LUN 0 listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(viewDoc, "ACL", tt.acl, 1)
			for _, format := range []string{"yaml", "json"} {
				raw := []byte(doc)
				if format == "json" {
					var v any
					if err := yaml.Unmarshal(raw, &v); err != nil {
						t.Fatal(err)
					}
					raw, _ = json.Marshal(v)
				}
				cfg, err := Parse(raw, format == "json")
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "iqn.2024-01.io.example:h1") {
						t.Errorf("%s: err %v, want %q naming the ACL", format, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				ids, all := cfg.Targets[0].ACLs[0].View()
				if all != tt.wantAll || !reflect.DeepEqual(ids, tt.want) {
					t.Errorf("%s: View() = %v, %v; want %v, %v", format, ids, all, tt.want, tt.wantAll)
				}
			}
		})
	}
}

// An explicit empty view must survive a round trip through either format:
// it means "no LUN", the absent list "every LUN".
func TestACLViewRoundTrip(t *testing.T) {
	var none, some ACL
	none.SetView(nil)
	some.SetView([]uint64{2})
	for _, a := range []ACL{{InitiatorIQN: "iqn.2024-01.io.example:h1"}, none, some} {
		j, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON ACL
		if err := json.Unmarshal(j, &fromJSON); err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var fromYAML ACL
		if err := yaml.Unmarshal(y, &fromYAML); err != nil {
			t.Fatal(err)
		}
		wantIDs, wantAll := a.View()
		for name, b := range map[string]ACL{"json " + string(j): fromJSON, "yaml " + string(y): fromYAML} {
			if ids, all := b.View(); all != wantAll || len(ids) != len(wantIDs) {
				t.Errorf("%s: view %v/%v, want %v/%v", name, ids, all, wantIDs, wantAll)
			}
		}
	}
	// SetView copies.
	ids := []uint64{1}
	some.SetView(ids)
	ids[0] = 9
	if got, _ := some.View(); got[0] != 1 {
		t.Error("SetView kept the caller's slice")
	}
}
