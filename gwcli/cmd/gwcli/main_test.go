package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the pty test run this test binary as gwcli.
func TestMain(m *testing.M) {
	if os.Getenv("GWCLI_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// batch runs gwcli with args and returns stdout, stderr and the exit code.
func batch(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("RBDGW_API_URL", "")
	t.Setenv("RBDGW_API_TOKEN", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	var out, errb bytes.Buffer
	code := run(args, devnull, &out, &errb)
	return out.String(), errb.String(), code
}

func TestBatch(t *testing.T) {
	c, url := startCanned(t)
	env := map[string]string{"RBDGW_API_URL": url, "RBDGW_API_TOKEN": token}
	out, errs, code := batch(t, env, "ls", "/")
	if code != 0 || !strings.Contains(out, "o- iscsi-targets ") || !strings.Contains(out, "[LOGGED-IN (ceph-gw-1), Auth: None, Disks: 1(90G)]") {
		t.Fatalf("ls /: %d %s %s", code, out, errs)
	}
	for _, r := range c.requests() {
		if strings.Contains(r, "/disks/") || strings.Contains(r, "/hosts/") {
			t.Errorf("ls / read one entity: %s", r)
		}
	}
	// -o anywhere on the line.
	out, _, code = batch(t, env, "/disks", "info", "-o", "json")
	if code != 0 || !strings.HasPrefix(out, "[\n  {\n    \"id\": \"rbd/disk_1\"") {
		t.Errorf("-o json: %d %s", code, out)
	}
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"/nope", "ls"}, 2, "error: no such path /nope"},
		{[]string{"/disks", "frob"}, 2, `error: unknown command "frob"`},
		{[]string{"/disks", "create", "rbd/disk_3", "90X"}, 2, "error: create: size \"90X\""},
		{[]string{"/disks", "delete", "rbd/disk_1"}, 3, "error: disk rbd/disk_1 is mapped as LUN 0"},
		{[]string{"ls", "/iscsi-targets/iqn.2003-01.com.x:gone"}, 4, "error: target iqn.2003-01.com.x:gone does not exist"},
		{[]string{"-o", "xml", "ls"}, 2, "error: -o \"xml\""},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
	}
	for _, tc := range cases {
		_, errs, code := batch(t, env, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("gwcli %v: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.err)
		}
		if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("gwcli %v: error is not one line: %q", tc.args, errs)
		}
	}
}

func TestConnectionErrors(t *testing.T) {
	_, url := startCanned(t)
	_, errs, code := batch(t, map[string]string{"RBDGW_API_URL": "http://127.0.0.1:1", "RBDGW_API_TOKEN": token}, "ls", "/disks")
	if code != 1 || !strings.HasPrefix(errs, "error: cannot reach the API at http://127.0.0.1:1: ") {
		t.Errorf("unreachable: %d %q", code, errs)
	}
	_, errs, code = batch(t, map[string]string{"RBDGW_API_URL": url, "RBDGW_API_TOKEN": "wrong"}, "ls", "/disks")
	if code != 1 || !strings.Contains(errs, "token rejected by "+url) {
		t.Errorf("bad token: %d %q", code, errs)
	}
	_, errs, code = batch(t, map[string]string{"RBDGW_API_URL": url}, "ls", "/disks")
	if code != 1 || !strings.Contains(errs, "needs a token") {
		t.Errorf("no token: %d %q", code, errs)
	}
	_, errs, code = batch(t, nil, "ls")
	if code != 2 || !strings.Contains(errs, "no API URL") {
		t.Errorf("no url: %d %q", code, errs)
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	_, url := startCanned(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gwcli.yaml")
	if err := os.WriteFile(cfg, []byte("url: "+url+"\ntoken: "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := batch(t, nil, "--config", cfg, "pwd")
	if code != 0 || out != "/\n" || errs != "" {
		t.Errorf("config file: %d %q %q", code, out, errs)
	}
	// Flags win over the environment, which wins over the file.
	_, errs, code = batch(t, map[string]string{"RBDGW_API_TOKEN": "wrong"}, "--config", cfg, "ls", "/disks")
	if code != 1 || !strings.Contains(errs, "token rejected") {
		t.Errorf("env over file: %d %q", code, errs)
	}
	_, _, code = batch(t, map[string]string{"RBDGW_API_TOKEN": "wrong"}, "--config", cfg, "--token", token, "ls", "/disks")
	if code != 0 {
		t.Errorf("flag over env: %d", code)
	}
	// The default location, and a warning when others can read it.
	home := t.TempDir()
	p := filepath.Join(home, ".config", "rbdgw", "gwcli.yaml")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("url: "+url+"\ntoken: "+token+"\n"), 0o644)
	_, errs, code = batch(t, map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config")}, "ls", "/disks")
	if code != 0 || !strings.Contains(errs, "readable by others") {
		t.Errorf("default config: %d %q", code, errs)
	}
	// An unknown key is one line that names it and the keys there are.
	os.WriteFile(cfg, []byte("url: x\nuri: x\n"), 0o600)
	_, errs, code = batch(t, nil, "--config", cfg, "ls")
	if want := "error: config file " + cfg + ": line 2: unknown key uri (the keys are url and token)\n"; code != 2 || errs != want {
		t.Errorf("bad config: %d %q, want %q", code, errs, want)
	}
}

func TestScriptFile(t *testing.T) {
	_, url := startCanned(t)
	env := map[string]string{"RBDGW_API_URL": url, "RBDGW_API_TOKEN": token}
	script := filepath.Join(t.TempDir(), "s.gw")
	os.WriteFile(script, []byte("# check\ncd /disks\nls\n\nrbd/disk_1 info\ndelete rbd/disk_1\nls /\n"), 0o600)
	out, errs, code := batch(t, env, "-f", script)
	if code != 3 || errs != script+":6: error: disk rbd/disk_1 is mapped as LUN 0 of "+tIQN+"; unmap it first\n" {
		t.Errorf("script: %d %q", code, errs)
	}
	if !strings.Contains(out, "o- disks ") || strings.Contains(out, "o- / ") {
		t.Errorf("script output: %s", out)
	}
}

// --wait-timeout is checked before any request: it needs --wait and the
// API's bound.
func TestWaitTimeoutFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // error text, "" for none
	}{
		{[]string{"--wait", "--wait-timeout", "2m", "ls"}, ""},
		{[]string{"--wait", "--wait-timeout", "5m", "ls"}, ""},
		{[]string{"--wait", "ls"}, ""},
		{[]string{"--wait-timeout", "1m", "ls"}, "--wait-timeout goes with --wait"},
		{[]string{"--wait", "--wait-timeout", "10m", "ls"}, "--wait-timeout 10m0s: expected a duration up to 5m0s"},
		{[]string{"--wait", "--wait-timeout", "-1s", "ls"}, "--wait-timeout -1s: expected a duration up to 5m0s"},
	} {
		_, _, err := parseFlags(tc.args, io.Discard)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
