package api

import (
	"strings"
	"testing"
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
