package shell

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestHistoryKeepsNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "gwcli_history")
	saveHistory(path, nil, []string{
		"ls /",
		"auth username=alice password=alicesecret1",
		"auth alice alicesecret1",
		"discovery_auth disc discsecret12",
		"auth nochap",
		"auth disable_acl",
		"cd /disks",
	})
	got := loadHistory(path)
	want := []string{"ls /", "auth nochap", "auth disable_acl", "cd /disks"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history %q, want %q", got, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v %v", st.Mode(), err)
	}
	long := make([]string, maxHistory+10)
	for i := range long {
		long[i] = "pwd"
	}
	saveHistory(path, got, long)
	if n := len(loadHistory(path)); n != maxHistory {
		t.Errorf("history kept %d lines", n)
	}
}

func TestRunLineRecoversPanics(t *testing.T) {
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New("escaped")
			}
		}()
		return runLine(context.Background(), nil, "ls") // a nil Env panics inside the command
	}()
	if err == nil || err.Error() == "escaped" {
		t.Fatalf("runLine: %v", err)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\n  b\tc "); got != "a b c" {
		t.Errorf("oneLine %q", got)
	}
}
