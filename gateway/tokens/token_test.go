package tokens

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoleIncludes(t *testing.T) {
	tests := []struct {
		r, other Role
		want     bool
	}{
		{RoleAdmin, RoleAdmin, true},
		{RoleAdmin, RoleOperator, true},
		{RoleAdmin, RoleViewer, true},
		{RoleOperator, RoleAdmin, false},
		{RoleOperator, RoleOperator, true},
		{RoleOperator, RoleViewer, true},
		{RoleViewer, RoleAdmin, false},
		{RoleViewer, RoleOperator, false},
		{RoleViewer, RoleViewer, true},
		{"", RoleViewer, false},
		{"root", RoleViewer, false},
		{RoleAdmin, "", false},
		{RoleAdmin, "root", false},
		{"Admin", RoleViewer, false},
	}
	for _, tc := range tests {
		if got := tc.r.Includes(tc.other); got != tc.want {
			t.Errorf("%q.Includes(%q) = %v, want %v", tc.r, tc.other, got, tc.want)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		got, err := ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "ADMIN", "root", " admin", "viewer\n"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRole(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"ci-runner_01.prod", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"has space", false},
		{"slash/es", false},
		{"colon:", false},
		{"ümlaut", false},
		{"new\nline", false},
	}
	for _, tc := range tests {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestGenerateFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, secret := generate()
		if !ValidID(id) {
			t.Fatalf("generated id %q is not valid", id)
		}
		if seen[id] {
			t.Fatalf("id %q drawn twice", id)
		}
		seen[id] = true
		tok := format(id, secret)
		if len(tok) != tokenLen || !strings.HasPrefix(tok, "rbdgw_"+id+"_") {
			t.Fatalf("token %q has the wrong layout", tok)
		}
		gid, gsecret, ok := parse(tok)
		if !ok || gid != id || !bytes.Equal(gsecret, secret) {
			t.Fatalf("parse(%q) = %q, %x, %v", tok, gid, gsecret, ok)
		}
	}
	if tokenLen != 6+12+1+43 {
		t.Fatalf("token length %d", tokenLen)
	}
}

func TestParse(t *testing.T) {
	secret := bytes.Repeat([]byte{0xff}, 32) // encodes to '_' characters
	good := format("0123456789uv", secret)
	if !strings.Contains(good[19:], "_") {
		t.Fatalf("test secret %q should contain '_'", good[19:])
	}
	tests := []struct {
		name, tok string
		ok        bool
	}{
		{"good", good, true},
		{"secret with underscores", good, true},
		{"empty", "", false},
		{"no prefix", strings.TrimPrefix(good, "rbdgw_"), false},
		{"other prefix", "rbdgx_" + good[6:], false},
		{"upper-case id", "rbdgw_0123456789UV_" + good[19:], false},
		{"id outside base32hex", "rbdgw_0123456789wx_" + good[19:], false},
		{"wrong separator", "rbdgw_0123456789uv-" + good[19:], false},
		{"short secret", good[:len(good)-1], false},
		{"long secret", good + "A", false},
		{"padded secret", good[:len(good)-1] + "=", false},
		{"standard base64", good[:19] + strings.ReplaceAll(good[19:], "_", "/"), false},
		{"non-canonical last char", good[:len(good)-1] + "9", false},
		{"trailing newline", good[:len(good)-1] + "\n", false},
	}
	for _, tc := range tests {
		id, got, ok := parse(tc.tok)
		if ok != tc.ok {
			t.Errorf("%s: parse(%q) ok=%v, want %v", tc.name, tc.tok, ok, tc.ok)
			continue
		}
		if ok && (id != "0123456789uv" || !bytes.Equal(got, secret)) {
			t.Errorf("%s: parse = %q, %x", tc.name, id, got)
		}
	}
	if id, ok := ParseID(good); !ok || id != "0123456789uv" {
		t.Errorf("ParseID = %q, %v", id, ok)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"0123456789ab", true},
		{"vvvvvvvvvvvv", true},
		{"0123456789a", false},
		{"0123456789abc", false},
		{"0123456789aw", false},
		{"0123456789aB", false},
		{"../../../etc", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := ValidID(tc.id); got != tc.ok {
			t.Errorf("ValidID(%q) = %v", tc.id, got)
		}
	}
}
