package pr

import (
	"encoding/binary"
	"testing"
)

func TestTransportIDRoundTrip(t *testing.T) {
	ports := []Port{
		port(1),
		{InitiatorPort: "iqn.1994-05.com.redhat:a,i,0x400001370000", InitiatorName: "iqn.1994-05.com.redhat:a"},
		{InitiatorPort: "eui.0123456789ABCDEF,i,0x00023D000001", InitiatorName: "eui.0123456789ABCDEF"},
	}
	for _, p := range ports {
		b := encodeTransportID(p)
		if len(b)%4 != 0 || len(b) < 24 {
			t.Fatalf("TransportID of %s is %d bytes", p.InitiatorPort, len(b))
		}
		if b[0] != 0x45 || int(binary.BigEndian.Uint16(b[2:])) != len(b)-4 {
			t.Fatalf("TransportID header %x", b[:4])
		}
		got, name, err := decodeTransportID(b)
		if err != nil {
			t.Fatalf("%s: %v", p.InitiatorPort, err)
		}
		if !(Port{InitiatorPort: got}).Same(Port{InitiatorPort: p.InitiatorPort}) || name != p.InitiatorName {
			t.Fatalf("round trip %q %q, want %q %q", got, name, p.InitiatorPort, p.InitiatorName)
		}
	}
}

func TestTransportIDNameOnlyEncoding(t *testing.T) {
	b := encodeTransportID(Port{InitiatorName: "iqn.2024-01.org.example:x"})
	if b[0] != 0x05 {
		t.Fatalf("format byte %#x, want name-only iSCSI", b[0])
	}
	if _, _, err := decodeTransportID(b); err == nil {
		t.Fatal("name-only TransportID accepted for an I_T nexus")
	}
}

func TestTransportIDInvalid(t *testing.T) {
	valid := encodeTransportID(port(1))
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	tests := map[string]struct {
		b     []byte
		field int
	}{
		"empty":            {nil, tidFieldFormat},
		"short":            {valid[:20], tidFieldFormat},
		"fibre channel":    {mutate(func(b []byte) []byte { b[0] = 0x40; return b }), tidFieldFormat},
		"reserved format":  {mutate(func(b []byte) []byte { b[0] = 0xc5; return b }), tidFieldFormat},
		"reserved bits":    {mutate(func(b []byte) []byte { b[0] |= 0x10; return b }), tidFieldFormat},
		"length too big":   {mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(len(b))); return b }), tidFieldAddLength},
		"length unaligned": {mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(len(b)-5)); return b }), tidFieldAddLength},
		"length too small": {mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 16); return b }), tidFieldAddLength},
		"no terminator": {mutate(func(b []byte) []byte {
			b[len(b)-1], b[len(b)-2], b[len(b)-3], b[len(b)-4] = 'a', 'a', 'a', 'a'
			return padNoNUL(b)
		}), tidFieldName},
		"no separator":      {encodeRaw("iqn.2024-01.org.example:x"), tidFieldName},
		"empty name":        {encodeRaw(",i,0x00023d000001"), tidFieldName},
		"short isid":        {encodeRaw("iqn.x:y,i,0x1234"), tidFieldName},
		"non-hex isid":      {encodeRaw("iqn.x:y,i,0x00023d00000g"), tidFieldName},
		"space in name":     {encodeRaw("iqn.x y,i,0x00023d000001"), tidFieldName},
		"control character": {encodeRaw("iqn.x\x01y,i,0x00023d000001"), tidFieldName},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := decodeTransportID(tc.b)
			te, ok := err.(*tidError)
			if !ok {
				t.Fatalf("error %v", err)
			}
			if te.field != tc.field {
				t.Fatalf("field %d, want %d", te.field, tc.field)
			}
			if te.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

// encodeRaw builds a port-format iSCSI TransportID holding s verbatim.
func encodeRaw(s string) []byte {
	n := (len(s) + 1 + 3) &^ 3
	if n < 20 {
		n = 20
	}
	b := make([]byte, 4+n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[4:], s)
	return b
}

// padNoNUL fills every NUL of the name field so no terminator is left.
func padNoNUL(b []byte) []byte {
	for i := 4; i < len(b); i++ {
		if b[i] == 0 {
			b[i] = 'z'
		}
	}
	return b
}

// Names longer than any valid iSCSI port name (only corrupt state holds
// them) still encode to a self-consistent TransportID.
func TestTransportIDOverlongName(t *testing.T) {
	long := make([]byte, 70000)
	for i := range long {
		long[i] = 'a'
	}
	b := encodeTransportID(Port{InitiatorPort: string(long) + ",i,0x00023d000001"})
	if int(binary.BigEndian.Uint16(b[2:])) != len(b)-4 || len(b)%4 != 0 {
		t.Fatalf("TransportID length field %d for %d bytes", binary.BigEndian.Uint16(b[2:]), len(b))
	}
}
