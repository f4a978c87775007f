package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/api/model"
)

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, body string
		code       string
		msg        string // substring of the message
	}{
		{"ok", `{"portals": ["127.0.0.1:3260"]}`, "", ""},
		{"empty", ``, model.CodeMalformed, "empty"},
		{"spaces", "  \n", model.CodeMalformed, "empty"},
		{"syntax", `{"portals": [}`, model.CodeMalformed, "line 1, column 14"},
		{"syntax line", "{\n\"portals\": 3,,}", model.CodeMalformed, "line 2"},
		{"truncated", `{"portals": ["a"`, model.CodeMalformed, "ends before"},
		{"wrong type", `{"portals": "127.0.0.1:3260"}`, model.CodeMalformed, `field "portals": expected an array, got string`},
		{"wrong int", `{"tpg_id": "one"}`, model.CodeMalformed, `field "tpg_id": expected a non-negative integer in range, got string`},
		{"int overflow", `{"tpg_id": 70000}`, model.CodeMalformed, `field "tpg_id"`},
		{"negative", `{"tpg_id": -1}`, model.CodeMalformed, `field "tpg_id"`},
		{"unknown field", `{"portal": ["x"]}`, model.CodeMalformed, `unknown field "portal"`},
		{"trailing", `{"portals": []} {}`, model.CodeMalformed, "after the JSON object"},
		{"trailing garbage", `{"portals": []} x`, model.CodeMalformed, "after the JSON object"},
		{"array not object", `[1,2]`, model.CodeMalformed, "expected an object, got array"},
		{"null", `null`, model.CodeMalformed, "expected a JSON object, got null"},
		{"null spaced", " null\n", model.CodeMalformed, "got null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v model.GatewayPut
			err := decodeStrict([]byte(tc.body), &v)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("decodeStrict: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Status != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %d %s %q; want 400 %s containing %q", e.Status, e.Code, e.Message, tc.code, tc.msg)
			}
		})
	}
}

// FuzzDecodeStrict: no input panics the decoder, and every failure is a
// 400 with a message.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"size": "90G", "features": ["layering"]}`, `{"chap": {"user": "u", "secret": "s"}}`,
		`{"luns": [0, 1]}`, `{`, `[]`, `"x"`, `{"size": 1e400}`, `{"object_size": "4K"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{&model.DiskPut{}, &model.HostPut{}, &model.TargetPut{}, &model.Export{}, &model.LUNPut{}} {
			err := decodeStrict(b, v)
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Message == "" {
				t.Fatalf("decodeStrict(%q) = %v, want a 400 *Error", b, err)
			}
		}
	})
}
