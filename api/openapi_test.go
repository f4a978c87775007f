package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the route table")

// TestOpenAPIDocument keeps the committed document equal to what the
// server serves: a route, a field or a status code that changes without
// the document fails here (go test ./api -update rewrites it).
func TestOpenAPIDocument(t *testing.T) {
	got := New(Options{Version: "v1"}).OpenAPI()
	if *update {
		if err := os.WriteFile("openapi.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("openapi.json differs from the routes; run: go test ./api -run TestOpenAPIDocument -update and review the diff")
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
}

// TestRoutesDocumented: every route gin serves is in the document with its
// method, and the document has nothing gin does not serve.
func TestRoutesDocumented(t *testing.T) {
	s := New(Options{Version: "v1"})
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(s.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range s.engine.Routes() {
		p := openapiPath(strings.TrimPrefix(r.Path, ""))
		served[strings.ToLower(r.Method)+" "+p] = true
		if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is served but not documented", r.Method, p)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !served[m+" "+p] {
				t.Errorf("%s %s is documented but not served", m, p)
			}
		}
	}
}
