package tree

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gwcli/client"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"create pool=rbd image=disk_1 size=90G", []string{"create", "pool=rbd", "image=disk_1", "size=90G"}, false},
		{"  ls   /  2 ", []string{"ls", "/", "2"}, false},
		{`auth username=a password="sec ret#1234"`, []string{"auth", "username=a", "password=sec ret#1234"}, false},
		{`auth a 'x\y'`, []string{"auth", "a", `x\y`}, false},
		{`auth a x\ y`, []string{"auth", "a", "x y"}, false},
		{"ls / # the whole tree", []string{"ls", "/"}, false},
		{"auth u pa#ss", []string{"auth", "u", "pa#ss"}, false},
		{"# only a comment", nil, false},
		{`ls "/disks`, nil, true},
		{"", nil, false},
	}
	for _, tc := range tests {
		got, err := Split(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("Split(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	create := disksCommands()[0]
	auth := hostCommands()[0]
	tdAdd := targetDisksCommands()[0]
	ls := global[0]
	tests := []struct {
		name  string
		cmd   *Command
		words string
		want  Args
		err   string // substring of the usage error
	}{
		{"keywords", create, "pool=rbd image=disk_1 size=90G", Args{"pool": "rbd", "image": "disk_1", "size": "90G"}, ""},
		{"positional short form", create, "rbd/disk_1 90G", Args{"pool": "rbd", "image": "disk_1", "size": "90G"}, ""},
		{"short form with count", create, "rbd/disk_ 10G 3", Args{"pool": "rbd", "image": "disk_", "size": "10G", "count": "3"}, ""},
		{"positional three", create, "rbd disk_1 1T", Args{"pool": "rbd", "image": "disk_1", "size": "1T"}, ""},
		{"mixed", create, "rbd/disk_1 size=2G count=2", Args{"pool": "rbd", "image": "disk_1", "size": "2G", "count": "2"}, ""},
		{"keyword only param", create, "rbd/d 1G block_size=4096", Args{"pool": "rbd", "image": "d", "size": "1G", "block_size": "4096"}, ""},
		{"missing size", create, "pool=rbd image=disk_1", nil, "missing size"},
		{"unknown key", create, "pool=rbd image=d size=1G colour=red", nil, `unknown parameter "colour"`},
		{"twice", create, "pool=rbd pool=x image=d size=1G", nil, "pool given twice"},
		{"too many", create, "rbd/d 1G 2 3", nil, "too many arguments"},
		{"bad unit", create, "rbd/d 90X", nil, "expected a number with an optional unit"},
		{"zero size", create, "rbd/d 0", nil, "larger than 0"},
		{"bad count", create, "rbd/d 1G count=0", nil, "from 1 to 256"},
		{"bad pool name", create, "pool=r@d image=d size=1G", nil, "pool name"},
		{"chap keywords", auth, "username=alice password=secret123456", Args{"username": "alice", "password": "secret123456"}, ""},
		{"chap positional", auth, "alice secret123456 bob mutual654321", Args{"username": "alice", "password": "secret123456", "mutual_username": "bob", "mutual_password": "mutual654321"}, ""},
		{"secret with equals", auth, "alice sec=ret123456", Args{"username": "alice", "password": "sec=ret123456"}, ""},
		{"nochap", auth, "nochap", Args{"username": "nochap"}, ""},
		{"lun id", tdAdd, "rbd/disk_1 7", Args{"disk": "rbd/disk_1", "lun_id": "7"}, ""},
		{"lun id too big", tdAdd, "rbd/disk_1 256", nil, "from 0 to 255"},
		{"disk without pool", tdAdd, "disk_1", nil, "<pool>/<image>"},
		{"ls depth", ls, "/ 2", Args{"path": "/", "depth": "2"}, ""},
		{"ls bad depth", ls, "/ two", nil, "depth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			words := strings.Fields(tc.words)
			if tc.cmd.Rewrite != nil {
				words = tc.cmd.Rewrite(words)
			}
			got, err := Parse(tc.cmd.Name, tc.cmd.Params, words)
			if tc.err != "" {
				var u *UsageError
				if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) error = %v, want usage error containing %q", tc.words, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.words, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tc.words, got, tc.want)
			}
		})
	}
}

func TestSizeErrors(t *testing.T) {
	p := Param{Name: "size", Kind: VSize}
	for _, ok := range []string{"90G", "512M", "1T", "1.5T", "4096", "10GiB", "2g"} {
		if err := checkValue(p, ok); err != nil {
			t.Errorf("size %q: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"90X":   "expected a number with an optional unit",
		"G":     "expected a number",
		"-1G":   "not a non-negative number",
		"1.5.5": "not a non-negative number",
		"0":     "larger than 0",
		"":      "empty",
		"0.3K":  "whole number of bytes",
	} {
		err := checkValue(p, in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("size %q: error %v, want it to contain %q", in, err, want)
		}
	}
}

func TestParsePortals(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"10.172.19.21", []string{"10.172.19.21:3260"}, false},
		{"10.0.0.1:3261", []string{"10.0.0.1:3261"}, false},
		{"10.0.0.1,10.0.1.1:3262", []string{"10.0.0.1:3260", "10.0.1.1:3262"}, false},
		{"fd00::1", []string{"[fd00::1]:3260"}, false},
		{"[fd00::1]:3000", []string{"[fd00::1]:3000"}, false},
		{"0.0.0.0", nil, true},
		{"gw1.example.com", nil, true},
		{"10.0.0.1:0", nil, true},
		{"", nil, true},
	}
	for _, tc := range tests {
		got, err := ParsePortals(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePortals(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usagef("bad"), 2},
		{&PathError{Path: "/x"}, 2},
		{&ScriptError{Line: 3, Err: usagef("bad")}, 2},
		{&client.APIError{Status: http.StatusNotFound}, 4},
		{&client.APIError{Status: http.StatusConflict}, 3},
		{&client.APIError{Status: http.StatusPreconditionFailed}, 3},
		{&client.APIError{Status: http.StatusBadRequest}, 1},
		{&client.APIError{Status: http.StatusBadGateway}, 1},
		{&client.AuthError{URL: "http://x"}, 1},
		{&client.UnreachableError{URL: "http://x", Err: errors.New("refused")}, 1},
		{&ScriptError{Line: 9, Err: &client.APIError{Status: 404}}, 4},
		{errors.New("other"), 1},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%#v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
