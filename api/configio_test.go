package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestImportYAMLErrors: a YAML import's decoding errors read like the
// JSON ones, without Go type names.
func TestImportYAMLErrors(t *testing.T) {
	doc := "version: 1\ntargetz: []\ndisks:\n  - pool: rbd\n    image: x\n    size: abc\n    block_size: \"x\"\n"
	_, err := parseImport([]byte(doc), true, "")
	if err == nil {
		t.Fatal("parseImport accepted a bad document")
	}
	want := `export document: line 2: unknown field "targetz"; line 6: expected an integer, got "abc"; line 7: expected a non-negative integer in range, got "x"`
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err, want)
	}
	if _, err := parseImport([]byte("version: 1\ntargets: {}\n"), true, ""); err == nil || !strings.HasSuffix(err.Error(), "line 2: expected an array, got an object") {
		t.Fatalf("targets as a map: %v", err)
	}
}

// TestImportFormat: ?format= wins, then a definite Content-Type; a body
// sent without one is JSON when it starts like a JSON object, else YAML.
func TestImportFormat(t *testing.T) {
	const jsonDoc, yamlDoc = "\n  {\"version\": 1}", "version: 1\n"
	tests := []struct {
		query, contentType, body string
		yaml, fails              bool
	}{
		{"", "", jsonDoc, false, false},
		{"", "", yamlDoc, true, false},
		{"", "application/x-www-form-urlencoded", yamlDoc, true, false},
		{"", "application/x-www-form-urlencoded", jsonDoc, false, false},
		{"", "text/plain; charset=utf-8", yamlDoc, true, false},
		{"", "application/json", yamlDoc, false, false},
		{"", "application/yaml", jsonDoc, true, false},
		{"?format=json", "application/yaml", yamlDoc, false, false},
		{"?format=yaml", "", jsonDoc, true, false},
		{"?format=xml", "", jsonDoc, false, true},
		{"", "image/png", jsonDoc, false, true},
		{"", "a/b/c;;", jsonDoc, false, true},
	}
	for _, tc := range tests {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/config/import"+tc.query, strings.NewReader(tc.body))
		if tc.contentType != "" {
			c.Request.Header.Set("Content-Type", tc.contentType)
		}
		isYAML, err := importFormat(c, []byte(tc.body))
		if (err != nil) != tc.fails || (err == nil && isYAML != tc.yaml) {
			t.Errorf("query %q, Content-Type %q, body %q: yaml %v, err %v; want yaml %v, fails %v",
				tc.query, tc.contentType, tc.body, isYAML, err, tc.yaml, tc.fails)
		}
	}
}
