package iscsi

import (
	"os"
	"testing"
	"time"
)

func TestManualServe(t *testing.T) {
	if os.Getenv("ISCSI_MANUAL") == "" {
		t.Skip()
	}
	e := newEnv(t)
	os.WriteFile("/tmp/iscsi_addr", []byte(e.addr), 0o644)
	time.Sleep(time.Duration(600) * time.Second)
}
