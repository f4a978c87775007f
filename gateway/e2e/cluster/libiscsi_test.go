package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	initiator1 = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"
	initiator2 = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2"
)

// The libiscsi conformance tests that use two paths, with the first path
// through gw-a and the second through gw-b, and the reservation tests.
// MultipathIO.CompareAndWrite compares one block past the range it
// initialises, so every run gets a fresh disk.
func TestLibiscsiAcrossGateways(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	var tests []string
	out, err := exec.Command("iscsi-test-cu", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	pick := regexp.MustCompile(`^ALL\.(MultipathIO|Prout[A-Za-z]*|Prin[A-Za-z]*|Reserve6)\.[A-Za-z0-9]+$`)
	for _, l := range trimLines(string(out)) {
		if pick.MatchString(l) {
			tests = append(tests, l)
		}
	}
	if len(tests) < 25 {
		t.Fatalf("only %d tests selected from iscsi-test-cu --list", len(tests))
	}
	logs := t.TempDir()
	passed := 0
	for _, name := range tests {
		cmd := exec.Command("timeout", "-k", "5", "120", "iscsi-test-cu", "-d", "-i", initiator1, "-I", initiator2,
			"-t", name, c.url(a, 0), c.url(b, 0))
		res, _ := cmd.CombinedOutput()
		_ = os.WriteFile(filepath.Join(logs, name+".log"), res, 0o644)
		switch {
		case regexp.MustCompile(`(?m)^ +tests +1 +1 +1 +0`).Match(res) && !strings.Contains(string(res), "SKIPPED"):
			passed++
		default:
			t.Errorf("%s did not pass:\n%s", name, tail(string(res), 25))
		}
	}
	t.Logf("libiscsi across gateways: %d of %d passed", passed, len(tests))
}
