package shell

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	prompt "github.com/c-bata/go-prompt"
	"golang.org/x/sys/unix"
)

// keyReader is the shell's go-prompt input. go-prompt v0.2.6 reads the
// terminal up to 1024 bytes at a time and takes a read for one key when
// it is exactly one known sequence; anything else is inserted into the
// line as text, control characters and carriage returns included. Keys
// arrive together whenever they reach the terminal faster than go-prompt
// polls it (every 10 ms): a key typed right after Ctrl-U, a paste, tmux
// send-keys, what was typed while a command ran. "\x15cd /disks\r" was
// then one line of text with a Ctrl-U and a carriage return in it, which
// moved the cursor under go-prompt's feet: the screen went blank, the
// prompt was gone and Enter ran nothing. keyReader splits every read into
// keys (known escape sequences, single control characters, runs of
// printable text) and hands go-prompt one per read.
//
// It also keeps go-prompt's idea of the window sane. go-prompt blanks the
// whole screen ("Your console window is too small...") when the window
// has fewer rows than the input plus its maximum number of suggestions,
// and misses a resize made while a command runs (its SIGWINCH handler is
// stopped then). keyReader reports a window tall enough for the
// suggestion area (the completer shows only as many suggestions as fit,
// see fitSuggestions) and raises SIGWINCH when the size changed behind
// go-prompt's back.
//
// And it gives the terminal back as it was whenever go-prompt lets go of
// it. go-prompt's raw mode overwrites its saved copy of the original
// modes, so its TearDown leaves the terminal raw: before a command, and
// when its own SIGINT or SIGTERM handler ends gwcli with os.Exit, which
// no deferred restore of the shell survives.
type keyReader struct {
	in *prompt.PosixParser
	fd int // the terminal, for its size

	orig  *unix.Termios // the modes before go-prompt's first Setup
	loose atomic.Bool   // go-prompt has let go of the terminal (TearDown .. Setup)
	intr  atomic.Bool   // a SIGINT came while loose, for the next command

	mu       sync.Mutex
	keys     [][]byte
	entered  bool           // Enter was handed out; nothing more until Setup
	reported prompt.WinSize // what go-prompt was told last
	checked  time.Time
	rows     uint16 // the terminal's height at the last check
}

// promptRows is the height reported to go-prompt: it only compares it
// with the input's rows plus the suggestion area, and draws no more
// suggestions than the completer returns.
const promptRows = 1000

func newKeyReader(fd int) *keyReader {
	k := &keyReader{in: prompt.NewStandardInputParser(), fd: fd}
	if t, err := unix.IoctlGetTermios(fd, ioctlGetTermios); err == nil {
		k.orig = t
	}
	return k
}

// Setup puts the terminal in go-prompt's raw mode; a SIGINT noted while
// the terminal was loose is forgotten (the prompt is back). The prompt is
// back before the terminal turns raw: a SIGINT that comes once it is raw
// (kill -INT at the prompt) ends gwcli, and is never taken for a command.
func (k *keyReader) Setup() error {
	k.mu.Lock()
	k.entered = false
	k.mu.Unlock()
	k.loose.Store(false)
	k.intr.Store(false)
	return k.in.Setup()
}

// TearDown restores the modes the terminal had before go-prompt.
func (k *keyReader) TearDown() error {
	k.loose.Store(true)
	err := k.in.TearDown()
	if k.orig != nil {
		if e := unix.IoctlSetTermios(k.fd, ioctlSetTermios, k.orig); err == nil {
			err = e
		}
	}
	return err
}

// noteInterrupt takes a SIGINT that came while no command ran: when
// go-prompt has let go of the terminal it is about to run a command (or
// to end), and the SIGINT is for that command; it reports false at the
// prompt, where SIGINT ends gwcli.
func (k *keyReader) noteInterrupt() bool {
	if !k.loose.Load() {
		return false
	}
	k.intr.Store(true)
	return true
}

// takeInterrupt reports (once) whether a SIGINT was noted for the command
// starting now.
func (k *keyReader) takeInterrupt() bool { return k.intr.Swap(false) }

// GetWinSize is the terminal's width and a height go-prompt never finds
// too small.
func (k *keyReader) GetWinSize() *prompt.WinSize {
	ws := prompt.WinSize{Row: promptRows, Col: 80}
	if w, err := unix.IoctlGetWinsize(k.fd, unix.TIOCGWINSZ); err == nil && w.Col > 0 {
		ws.Col = w.Col
	}
	k.mu.Lock()
	k.reported = ws
	k.mu.Unlock()
	return &ws
}

// errNoKey tells go-prompt's reader that nothing was typed.
var errNoKey = errors.New("no key")

// Read returns one key.
func (k *keyReader) Read() ([]byte, error) {
	k.checkSize()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		b, err := k.in.Read()
		if err != nil {
			return nil, err
		}
		k.keys = splitKeys(b)
	}
	if len(k.keys) == 0 || k.entered {
		return nil, errNoKey
	}
	key := k.keys[0]
	k.keys = k.keys[1:]
	// Enter runs the line; what follows it is for the command (a Ctrl-C,
	// see startCommand) or for the next prompt. go-prompt's reader may
	// poll once more before it is stopped, and a key it takes then waits
	// in go-prompt's channel, out of the command's reach: hand out
	// nothing more until go-prompt sets the terminal up again.
	if len(key) == 1 && (key[0] == '\r' || key[0] == '\n') {
		k.entered = true
	}
	return key, nil
}

// checkSize looks at the terminal's size at most every 100 ms. While its
// width is not the one go-prompt was told, it raises SIGWINCH, and
// go-prompt asks again (a resize during a command, or before go-prompt's
// handler listens again, is otherwise lost). When the height changed it
// queues a key that does nothing (Ignore), so that go-prompt asks the
// completer again, which fits the suggestions to the new height.
func (k *keyReader) checkSize() {
	k.mu.Lock()
	if time.Since(k.checked) < 100*time.Millisecond || k.reported.Col == 0 {
		k.mu.Unlock()
		return
	}
	k.checked = time.Now()
	col := k.reported.Col
	k.mu.Unlock()
	w, err := unix.IoctlGetWinsize(k.fd, unix.TIOCGWINSZ)
	if err != nil || w.Col == 0 {
		return
	}
	if w.Col != col {
		_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	}
	k.mu.Lock()
	if k.rows != 0 && k.rows != w.Row {
		k.keys = append(k.keys, ignoreKey)
	}
	k.rows = w.Row
	k.mu.Unlock()
}

// ignoreKey is go-prompt's key that does nothing but a new completion and
// rendering.
var ignoreKey = []byte{0x1b, 0x5b, 0x45}

// fitSuggestions is how many suggestions fit below the input: go-prompt
// draws up to limit of them under the line it renders (width cells of a
// terminal of cols columns), and the prompt's line and that area must fit
// in rows. 0 when none fit.
func fitSuggestions(n, limit, rows, cols, width int) int {
	if cols <= 0 || rows <= 0 || n <= 0 {
		return n
	}
	room := rows - (width/cols + 1)
	if room >= limit || room >= n {
		return n // go-prompt scrolls through more than limit
	}
	return max(0, room)
}

// splitKeys splits what one read returned into keys go-prompt knows:
// escape sequences it has a key for (an unknown one is dropped, never
// inserted as text), single control characters, and runs of printable
// text (a paste stays quick).
func splitKeys(b []byte) [][]byte {
	var keys [][]byte
	for len(b) > 0 {
		n := 0
		switch c := b[0]; {
		case c == 0x1b:
			n = escapeLen(b)
			if n > 1 && prompt.GetKey(b[:n]) == prompt.NotDefined {
				b = b[n:] // an escape sequence go-prompt has no key for
				continue
			}
		case c < 0x20 || c == 0x7f:
			n = 1
		default:
			for n < len(b) && b[n] >= 0x20 && b[n] != 0x7f {
				_, size := utf8.DecodeRune(b[n:])
				n += size
			}
		}
		keys = append(keys, b[:n:n])
		b = b[n:]
	}
	return keys
}

// escapeLen is the length of the escape sequence b starts with: the
// longest sequence go-prompt knows, else a CSI (ESC [ ... final byte) or
// SS3 (ESC O x) sequence, else the ESC alone.
func escapeLen(b []byte) int {
	best := 1
	for _, s := range prompt.ASCIISequences {
		if len(s.ASCIICode) > best && bytes.HasPrefix(b, s.ASCIICode) {
			best = len(s.ASCIICode)
		}
	}
	if best > 1 || len(b) < 2 {
		return best
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1
			}
		}
		return len(b)
	case 'O':
		if len(b) >= 3 {
			return 3
		}
		return len(b)
	}
	return 1
}

// ctrlC is the key that interrupts a running command.
const ctrlC = 0x03

// startCommand readies the terminal for a command and returns end, which
// puts it back before go-prompt reads keys again. Commands run with the
// terminal raw, as at the prompt, so that keys typed meanwhile are
// neither echoed over the command's output nor held in a line; but then
// Ctrl-C would only be a 0x03 read after the command ended. While the
// command runs, Ctrl-C is SIGINT (the shell cancels the command on it);
// Ctrl-\ and Ctrl-Z stay keys, since SIGQUIT would kill gwcli and SIGTSTP
// stop it with the terminal raw; NOFLSH keeps what is typed after Ctrl-C
// for the prompt. Keys that arrived after Enter but before the signal was
// on (in keyReader's queue or the terminal's) are taken into the queue:
// interrupted tells whether a Ctrl-C was among them (it is removed; the
// keys around it stay, in order).
func (k *keyReader) startCommand() (interrupted bool, end func()) {
	tio, err := unix.IoctlGetTermios(k.fd, ioctlGetTermios)
	if err != nil {
		return false, func() {}
	}
	saved := *tio
	makeRaw(tio)
	tio.Lflag |= unix.ISIG | unix.NOFLSH
	tio.Cc[unix.VINTR] = ctrlC
	tio.Cc[unix.VQUIT] = vdisable
	tio.Cc[unix.VSUSP] = vdisable
	if err := unix.IoctlSetTermios(k.fd, ioctlSetTermios, tio); err != nil {
		return false, func() {}
	}
	// The command ends into go-prompt's raw mode, not the modes before
	// it: the prompt is drawn before go-prompt sets the terminal up again,
	// and keys sent meanwhile (a paste, tmux send-keys) would otherwise
	// meet the kernel's line editing (Backspace, Ctrl-W, Ctrl-U erasing in
	// the terminal's own line) instead of reaching go-prompt as keys.
	// Every way out of gwcli restores the original modes.
	end = func() {
		raw := saved
		makeRaw(&raw)
		_ = unix.IoctlSetTermios(k.fd, ioctlSetTermios, &raw)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	// What is queued now was typed before Ctrl-C was a signal. go-prompt
	// does not read while a command runs; its reader is blocking then,
	// so read only what is there.
	for i := 0; i < 64; i++ {
		n, err := unix.IoctlGetInt(k.fd, ioctlInQueue)
		if err != nil || n <= 0 {
			break
		}
		b, err := k.in.Read()
		if err != nil || len(b) == 0 {
			break
		}
		k.keys = append(k.keys, splitKeys(b)...)
	}
	for i, key := range k.keys {
		if len(key) == 1 && key[0] == ctrlC {
			k.keys = append(k.keys[:i:i], k.keys[i+1:]...)
			return true, end
		}
	}
	return false, end
}

// makeRaw sets the modes go-prompt's raw mode sets (cfmakeraw's, with
// output processing kept).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Lflag &^= unix.ECHO | unix.ICANON | unix.IEXTEN | unix.ISIG | unix.ECHONL
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}
