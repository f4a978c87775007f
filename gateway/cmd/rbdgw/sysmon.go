package main

import (
	"os"
	"strings"
	"syscall"
)

// The Go runtime's monitor thread (sysmon) sleeps until woken while every
// P is idle, and the first system call or cgo call after that wakes it.
// Every librbd request is a cgo call, and a gateway waiting for its OSDs
// goes idle thousands of times a second, so sysmon was woken, polled every
// 20 µs and went back to sleep about once per RBD I/O. With schedtrace set
// it never sleeps that way: it polls, backing off to every 10 ms while
// nothing needs it. The runtime reads the setting only from the
// environment at start, hence the re-execution. See
// docs/adr/0011-keep-the-runtime-monitor-polling.md.
const (
	godebugVar = "GODEBUG"
	// sysmonSetting is the longest schedtrace period (ms): a scheduler
	// summary line on standard error at most every 24.8 days, counted
	// from the host's boot.
	sysmonSetting = "schedtrace=2147483647"
)

// withSysmonPolling returns env with sysmonSetting added to GODEBUG, and
// true; or env unchanged and false when GODEBUG already sets schedtrace
// (the operator's choice, or this process after its re-execution).
func withSysmonPolling(env []string) ([]string, bool) {
	prefix := godebugVar + "="
	for i, kv := range env {
		value, ok := strings.CutPrefix(kv, prefix)
		if !ok {
			continue
		}
		for _, field := range strings.Split(value, ",") {
			if strings.HasPrefix(field, "schedtrace=") {
				return env, false
			}
		}
		out := append([]string(nil), env...)
		if value == "" {
			out[i] = prefix + sysmonSetting
		} else {
			out[i] = kv + "," + sysmonSetting
		}
		return out, true
	}
	return append(append([]string(nil), env...), prefix+sysmonSetting), true
}

// keepSysmonPolling re-executes the daemon, same process and arguments,
// with sysmonSetting in its environment. It returns only when it did not:
// the setting is in place already (nil), or exec failed.
func keepSysmonPolling() error {
	env, changed := withSysmonPolling(os.Environ())
	if !changed {
		return nil
	}
	// The binary's own path, not os.Args[0] (started through PATH or a
	// relative path) nor /proc/self/exe (the process would be named "exe").
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(self, os.Args, env)
}
