package iscsi

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestLibiscsiConformance runs libiscsi's iscsi-test-cu (Debian package
// libiscsi-bin) against the target: the iSCSI family (CmdSN window, DataSN,
// residuals, task management), then reads and writes with the header
// digest offered.
func TestLibiscsiConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("external conformance suite skipped in -short mode")
	}
	bin, err := exec.LookPath("iscsi-test-cu")
	if err != nil {
		t.Skip("iscsi-test-cu not installed")
	}
	e := newEnv(t)
	base := "iscsi://" + e.addr + "/" + testIQN + "/0"
	for _, run := range []struct{ tests, url string }{
		{"iSCSI", base},
		{"SCSI.Read10,SCSI.Write10", base + "?header_digest=crc32c"},
	} {
		t.Run(run.tests, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "-d", "-t", run.tests, run.url).CombinedOutput()
			if err != nil {
				t.Fatalf("iscsi-test-cu: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no run summary:\n%s", out)
			}
			ran, _ := strconv.Atoi(string(m[2]))
			failed, _ := strconv.Atoi(string(m[4]))
			if ran == 0 || failed != 0 {
				t.Fatalf("%d of %d tests failed:\n%s", failed, ran, out)
			}
		})
	}
}
