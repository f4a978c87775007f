package pr

import "testing"

func TestSameName(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"iqn.2024-01.org.example:host1,i,0x023d00000001", "IQN.2024-01.org.EXAMPLE:Host1,i,0x023D00000001", true},
		{"iqn.2024-01.org.example:host1", " iqn.2024-01.org.example:host1 ", true},
		// strings.EqualFold would call these equal; an ACL does not.
		{"iqn.2024-01.org.example:host1", "iqn.2024-01.org.example:hoſt1", false},
		{"iqn.2024-01.org.example:host1", "iqn.2024-01.org.example:host2", false},
	} {
		if got := SameName(tt.a, tt.b); got != tt.same {
			t.Errorf("SameName(%q, %q) = %v", tt.a, tt.b, got)
		}
		a, b := Port{InitiatorPort: tt.a, TargetPort: "t"}, Port{InitiatorPort: tt.b, TargetPort: "T"}
		if got := a.Same(b); got != tt.same {
			t.Errorf("Port.Same(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
