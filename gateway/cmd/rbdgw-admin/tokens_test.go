package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

func TestTokenUsage(t *testing.T) {
	a := &admin{out: &strings.Builder{}}
	for _, args := range [][]string{
		{"token"},
		{"token", "rotate"},
		{"token", "list", "extra"},
		{"token", "revoke"},
		{"token", "revoke", "a", "b"},
		{"token", "create"},
		{"token", "create", "-name", "x"},
		{"token", "create", "-role", "admin"},
		{"token", "create", "-name", "x", "-role", "root"},
		{"token", "create", "-name", "x", "-role", "admin", "positional"},
		{"token", "create", "-name", "x", "-role", "admin", "-ttl", "forever"},
		{"audit", "-n", "0"},
		{"audit", "extra"},
	} {
		if err := a.dispatch(context.Background(), args); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestPrintTokens(t *testing.T) {
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	exp := created.Add(time.Hour)
	var b strings.Builder
	err := printTokens(&b, []tokens.Info{
		{ID: "0123456789ab", Name: "ci", Role: tokens.RoleOperator, Created: created},
		{ID: "vvvvvvvvvvvv", Name: "tmp", Role: tokens.RoleViewer, Created: created, Expires: &exp},
	}, created.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID            NAME  ROLE      CREATED               EXPIRES\n" +
		"0123456789ab  ci    operator  2025-03-01T10:00:00Z  never\n" +
		"vvvvvvvvvvvv  tmp   viewer    2025-03-01T10:00:00Z  2025-03-01T11:00:00Z (expired)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestPrintAudit(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := printAudit(&b, []audit.Entry{
		{Time: at, TokenID: "0123456789ab", TokenName: "ci", Role: "operator", Remote: "192.0.2.1",
			Method: "PUT", Path: "/api/v1/disks/rbd/a", Status: 200, Revision: 42, Body: `{"secret":"***"}`},
		{Time: at, TokenName: "rbdgw-admin", Role: "admin", Remote: "local:root@gw1", Method: "CLI",
			Path: "token revoke", Status: 200},
		{Time: at, Method: "DELETE", Path: "/api/v1/gateways/gw1", Status: 409, Code: "in_use"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"TIME                  TOKEN              ROLE      REMOTE          REQUEST                      STATUS      REVISION\n" +
		"2025-03-01T10:00:00Z  ci (0123456789ab)  operator  192.0.2.1       PUT /api/v1/disks/rbd/a      200         42\n" +
		"2025-03-01T10:00:00Z  rbdgw-admin        admin     local:root@gw1  CLI token revoke             200         -\n" +
		"2025-03-01T10:00:00Z  -                  -         -               DELETE /api/v1/gateways/gw1  409 in_use  -\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestTokenCommands runs the commands against a real etcd.
func TestTokenCommands(t *testing.T) {
	const prefix = "/admin-test/"
	cmd, cli, _ := adminEtcd(t, prefix, "20s")
	store := tokens.New(cli, prefix)
	ctx := context.Background()

	out, err := cmd("token", "create", "-name", "ci", "-role", "operator", "-ttl", "24h")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	info, err := store.Verify(ctx, tok)
	if err != nil || info.Name != "ci" || info.Role != tokens.RoleOperator || info.Expires == nil {
		t.Fatalf("printed %q: Verify = %+v, %v", out, info, err)
	}

	path := filepath.Join(t.TempDir(), "secrets", "admin.token")
	out, err = cmd("token", "create", "-o", path, "-name", "break-glass", "-role", "admin")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Fatalf("the token was printed as well as written: %q", out)
	}
	admin, err := store.Verify(ctx, strings.TrimSpace(string(b)))
	if err != nil || admin.Role != tokens.RoleAdmin || !strings.Contains(out, admin.ID) {
		t.Fatalf("written token: %+v, %v (output %q)", admin, err, out)
	}

	out, err = cmd("token", "list")
	if err != nil {
		t.Fatal(err)
	}
	secretOf := func(tok string) string { return tok[len("rbdgw_")+13:] }
	if !strings.Contains(out, info.ID) || !strings.Contains(out, admin.ID) || !strings.Contains(out, "break-glass") ||
		strings.Contains(out, secretOf(tok)) {
		t.Fatalf("token list:\n%s", out)
	}

	if out, err = cmd("token", "revoke", info.ID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q, %v", out, err)
	}
	if _, err := store.Verify(ctx, tok); !errors.Is(err, tokens.ErrInvalidToken) {
		t.Fatalf("revoked token still verifies: %v", err)
	}
	if _, err := cmd("token", "revoke", info.ID); !errors.Is(err, tokens.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}

	out, err = cmd("audit", "-n", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "CLI token revoke") || !strings.Contains(lines[2], "CLI token create") ||
		!strings.Contains(lines[1], "rbdgw-admin") {
		t.Fatalf("audit -n 2:\n%s", out)
	}
	out, err = cmd("audit", "-json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, `"method": "CLI"`) != 3 || !strings.Contains(out, `\"name\":\"break-glass\"`) ||
		strings.Contains(out, secretOf(tok)) {
		t.Fatalf("audit -json:\n%s", out)
	}
}
