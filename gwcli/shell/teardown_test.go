//go:build linux

package shell

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rbdgw/rbdgw/gwcli/internal/ptytest"
)

// teardownChild, set in a child's environment, makes TestMain act as
// go-prompt does when its own SIGINT or SIGTERM handler ends the program:
// raw mode, TearDown, os.Exit, with no restore of the shell's in between.
const teardownChild = "GWCLI_SHELL_TEARDOWN_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(teardownChild) != "" {
		k := newKeyReader(int(os.Stdin.Fd()))
		if err := k.Setup(); err != nil {
			fmt.Println("setup:", err)
			os.Exit(3)
		}
		if t, err := unix.IoctlGetTermios(k.fd, ioctlGetTermios); err != nil || t.Lflag&unix.ICANON != 0 {
			fmt.Println("not raw after Setup:", err)
			os.Exit(3)
		}
		if err := k.TearDown(); err != nil {
			fmt.Println("teardown:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// go-prompt ends gwcli itself on SIGINT or SIGTERM at the prompt (its
// handler races the shell's): the terminal must still be as it was.
func TestTearDownRestoresTerminal(t *testing.T) {
	p := ptytest.Open(t)
	before := p.Termios(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), teardownChild+"=1")
	p.Start(t, cmd)
	if code := ptytest.WaitExit(t, cmd); code != 0 {
		t.Fatalf("child exit %d:\n%s", code, p.All())
	}
	p.CheckCooked(t, before)
}
