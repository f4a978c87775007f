package audit

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMaskSecrets(t *testing.T) {
	w, _ := json.Marshal(Withheld)
	withheld := string(w)
	tests := []struct {
		name, in, want string
	}{
		{"no secrets", `{"name":"a","size":1}`, `{"name":"a","size":1}`},
		{"compacts", "{ \"a\" : [ 1 , 2 ] }\n", `{"a":[1,2]}`},
		{"every secret key", `{"secret":"s1","password":"p1","mutual_secret":"m1","mutual_password":"m2","chap_secret":"c1","token":"t1","user":"u"}`,
			`{"secret":"***","password":"***","mutual_secret":"***","mutual_password":"***","chap_secret":"***","token":"***","user":"u"}`},
		{"nested object", `{"target":{"chap":{"user":"u","secret":"abcdefghijkl","mutual_user":"m","mutual_secret":"mnopqrstuvwx"}}}`,
			`{"target":{"chap":{"user":"u","secret":"***","mutual_user":"m","mutual_secret":"***"}}}`},
		{"array of objects", `{"hosts":[{"initiator":"a","chap":{"secret":"x1"}},{"initiator":"b","chap":{"password":"x2"}}]}`,
			`{"hosts":[{"initiator":"a","chap":{"secret":"***"}},{"initiator":"b","chap":{"password":"***"}}]}`},
		{"top-level array", `[{"token":"rbdgw_x"},[{"secret":1}]]`, `[{"token":"***"},[{"secret":"***"}]]`},
		{"any case", `{"Secret":"a","PASSWORD":"b","Mutual_Secret":"c"}`, `{"Secret":"***","PASSWORD":"***","Mutual_Secret":"***"}`},
		{"escaped key", `{"secr\u0065t":"a"}`, `{"secret":"***"}`},
		{"non-string values", `{"secret":{"nested":"x"},"password":[1,2],"token":42,"chap_secret":true}`,
			`{"secret":"***","password":"***","token":"***","chap_secret":"***"}`},
		{"null stays null", `{"secret":null,"user":null}`, `{"secret":null,"user":null}`},
		{"empty string masked", `{"secret":""}`, `{"secret":"***"}`},
		{"secret as a value is not a key", `{"name":"secret","list":["password"]}`, `{"name":"secret","list":["password"]}`},
		{"similar keys kept", `{"secrets":"a","user_secret":"b","tokens":["c"]}`, `{"secrets":"a","user_secret":"b","tokens":["c"]}`},
		{"key order kept", `{"z":1,"secret":"s","a":2}`, `{"z":1,"secret":"***","a":2}`},
		{"duplicate keys all masked", `{"secret":"a","secret":"b"}`, `{"secret":"***","secret":"***"}`},
		{"numbers kept exactly", `{"n":12345678901234567890,"f":1e3,"g":-0.5}`, `{"n":12345678901234567890,"f":1e3,"g":-0.5}`},
		{"no HTML escaping", `{"note":"<a&b>"}`, `{"note":"<a&b>"}`},
		{"scalar document", `"just a string"`, `"just a string"`},
		{"empty object and array", `{"a":{},"b":[]}`, `{"a":{},"b":[]}`},
		{"empty input", ``, ``},
		{"white space only", "  \n", "  \n"},
		{"not JSON", `secret: hunter2hunter2`, withheld},
		{"truncated", `{"secret":"abc`, withheld},
		{"trailing data", `{"a":1} {"secret":"x"}`, withheld},
		{"unbalanced", `{"a":[1}`, withheld},
		{"too deep", strings.Repeat("[", 300) + strings.Repeat("]", 300), withheld},
		{"too deep under a secret", `{"secret":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, withheld},
	}
	for _, tc := range tests {
		got := string(MaskSecrets([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("%s: MaskSecrets(%s)\n got %s\nwant %s", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestMaskSecretsNeverLeaks(t *testing.T) {
	const secret = "hunter2hunter2"
	for _, in := range []string{
		`{"secret":"` + secret + `"}`,
		`{"a":{"b":[{"c":{"chap_secret":"` + secret + `"}}]}}`,
		`{"secret":"` + secret + `"`,
		`secret=` + secret,
		`[{"token":["` + secret + `"]}]`,
	} {
		if got := MaskSecrets([]byte(in)); strings.Contains(string(got), secret) {
			t.Errorf("MaskSecrets(%s) = %s", in, got)
		}
	}
}
