//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tree

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyTop is the live view's terminal: stdin without echo and line
// buffering (signals stay on: Ctrl-C is SIGINT), the alternate screen
// with the cursor hidden; Restore puts both back.
type ttyTop struct {
	out   io.Writer
	outFd int
	inFd  int
	saved *term.State
	// screen: the alternate screen is on.
	screen bool
	keys   chan []byte
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// openTopTerm opens the live view when stdin and out are terminals.
func openTopTerm(out io.Writer) (topTerm, bool) {
	t, ok := openKeyTerm(out, true)
	if !ok {
		return nil, false
	}
	return t, true
}

// openKeys reads single keys from the terminal while a command follows
// something (events), when stdin and out are terminals.
func openKeys(out io.Writer) (topTerm, bool) {
	t, ok := openKeyTerm(out, false)
	if !ok {
		return nil, false
	}
	return t, true
}

// openKeyTerm turns echo and line buffering off and signals on (the shell
// runs commands with the terminal as go-prompt left it, raw: Ctrl-C is
// SIGINT again), and with screen switches to the alternate screen.
func openKeyTerm(out io.Writer, screen bool) (*ttyTop, bool) {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, false
	}
	in := int(os.Stdin.Fd())
	saved, err := term.GetState(in)
	if err != nil {
		return nil, false
	}
	tio, err := unix.IoctlGetTermios(in, ioctlGetTermios)
	if err != nil {
		return nil, false
	}
	tio.Lflag &^= unix.ECHO | unix.ICANON
	tio.Lflag |= unix.ISIG
	tio.Oflag |= unix.OPOST
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(in, ioctlSetTermios, tio); err != nil {
		return nil, false
	}
	t := &ttyTop{out: out, outFd: int(f.Fd()), inFd: in, saved: saved, screen: screen,
		keys: make(chan []byte, 16), stop: make(chan struct{}), done: make(chan struct{})}
	if screen {
		io.WriteString(out, "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
	}
	go t.read()
	return t, true
}

// read hands over what is typed; it polls so that it stops when the view
// ends, leaving the next keys to whoever reads the terminal then (the
// shell).
func (t *ttyTop) read() {
	defer close(t.done)
	defer close(t.keys)
	buf := make([]byte, 64)
	for {
		select {
		case <-t.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(t.inFd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil || fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		m, err := unix.Read(t.inFd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			return
		}
		select {
		case t.keys <- append([]byte(nil), buf[:m]...):
		case <-t.stop:
			return
		}
	}
}

func (t *ttyTop) Keys() <-chan []byte { return t.keys }

func (t *ttyTop) Size() (int, int) {
	w, h, err := term.GetSize(t.outFd)
	if err != nil || w < 20 || h < 5 {
		return 80, 24
	}
	return w, h
}

func (t *ttyTop) Restore() {
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		if t.screen {
			io.WriteString(t.out, "\x1b[?25h\x1b[?1049l")
		}
		_ = term.Restore(t.inFd, t.saved)
	})
}
