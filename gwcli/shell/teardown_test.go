//go:build linux

package shell

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// A command ends with the terminal in go-prompt's raw mode: keys sent
// before go-prompt sets it up again reach it as they were typed, not
// edited by the kernel's line discipline (the Ctrl-W and Backspaces of a
// paste erasing text in the terminal's own line).
func TestCommandEndsRaw(t *testing.T) {
	p := ptytest.Open(t)
	// No go-prompt parser (it opens the process's own /dev/tty): nothing
	// is queued for startCommand to read.
	k := &keyReader{fd: int(p.Slave.Fd())}
	_, end := k.startCommand()
	end()
	tio := p.Termios(t)
	if tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Fatalf("after a command: lflag %#x, want icanon, echo and isig off", tio.Lflag)
	}
	keys := "cd /disks/rb\x17\x01X\x05Y" + strings.Repeat("\x7f", 12)
	p.Send(t, keys)
	got := make(chan string, 1)
	go func() {
		var b []byte
		buf := make([]byte, 64)
		for len(b) < len(keys) {
			n, err := p.Slave.Read(buf)
			if err != nil {
				break
			}
			b = append(b, buf[:n]...)
		}
		got <- string(b)
	}()
	select {
	case s := <-got:
		if s != keys {
			t.Fatalf("read %q, want the keys as sent, %q", s, keys)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the keys sent never reached the reader")
	}
}
