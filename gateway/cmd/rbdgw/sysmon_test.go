package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestWithSysmonPolling(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + sysmonSetting}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "A=1"}, []string{"GODEBUG=" + sysmonSetting, "A=1"}, true},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1,gctrace=1"}, []string{"GODEBUG=madvdontneed=1,gctrace=1," + sysmonSetting}, true},
		{"operator's schedtrace", []string{"GODEBUG=schedtrace=1000"}, []string{"GODEBUG=schedtrace=1000"}, false},
		{"operator turned it off", []string{"GODEBUG=gctrace=1,schedtrace=0"}, []string{"GODEBUG=gctrace=1,schedtrace=0"}, false},
		{"already re-executed", []string{"GODEBUG=" + sysmonSetting}, []string{"GODEBUG=" + sysmonSetting}, false},
		{"a look-alike variable", []string{"XGODEBUG=schedtrace=1"}, []string{"XGODEBUG=schedtrace=1", "GODEBUG=" + sysmonSetting}, true},
		{"a look-alike setting", []string{"GODEBUG=noschedtrace=1"}, []string{"GODEBUG=noschedtrace=1," + sysmonSetting}, true},
	}
	for _, tc := range tests {
		in := slices.Clone(tc.env)
		got, changed := withSysmonPolling(in)
		if changed != tc.changed || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, changed, tc.want, tc.changed)
		}
		if !slices.Equal(in, tc.env) {
			t.Errorf("%s: the caller's environment was modified: %q", tc.name, in)
		}
	}
}

// TestKeepSysmonPollingReexecutes runs this test binary as a child that
// calls keepSysmonPolling: it must re-execute exactly once, in the same
// process, with the setting added to what GODEBUG held.
func TestKeepSysmonPollingReexecutes(t *testing.T) {
	if os.Getenv("RBDGW_SYSMON_CHILD") == "1" {
		fmt.Printf("start pid=%d GODEBUG=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
		if err := keepSysmonPolling(); err != nil {
			fmt.Println("exec failed:", err)
			os.Exit(3)
		}
		fmt.Printf("running pid=%d GODEBUG=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeepSysmonPollingReexecutes$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "RBDGW_SYSMON_CHILD=1", "GODEBUG=madvdontneed=1")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	pid := cmd.Process.Pid
	with := "madvdontneed=1," + sysmonSetting
	want := fmt.Sprintf("start pid=%d GODEBUG=madvdontneed=1\nstart pid=%d GODEBUG=%s\nrunning pid=%d GODEBUG=%s\n",
		pid, pid, with, pid, with)
	if out.String() != want {
		t.Errorf("child printed\n%s\nwant\n%s", out.String(), want)
	}
}
