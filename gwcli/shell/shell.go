// Package shell is gwcli's interactive mode: a go-prompt loop whose prompt
// shows the current node, with completion of commands, paths, key= names
// and live names from the API. go-prompt is kept behind this package so
// that it can be swapped.
//
// go-prompt v0.2.6 leaves the terminal in raw mode on some exits, so the
// shell saves the terminal state (golang.org/x/term) before go-prompt
// touches it and restores it on every way out: the exit command, Ctrl-D on
// an empty line, SIGINT, SIGTERM and SIGHUP, and a panic. Its input goes
// through keyReader (input.go), which hands go-prompt one key at a time
// and keeps its idea of the window's size right.
package shell

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	prompt "github.com/c-bata/go-prompt"
	"golang.org/x/term"

	"github.com/rbdgw/rbdgw/gwcli/tree"
)

// Options of the shell.
type Options struct {
	// HistoryFile keeps the command history across sessions ("" : none).
	HistoryFile string
	// Banner is printed before the first prompt.
	Banner string
}

// settleSignal is the signal the shell sends itself after a command to
// know that the signals raised during it were handled. SIGUSR1 is
// numbered above SIGINT and means nothing else to gwcli.
const settleSignal = syscall.SIGUSR1

// maxHistory is how many lines the history file keeps.
const maxHistory = 1000

// maxSuggestions is the height of the suggestion area, when the window
// has room for it.
const maxSuggestions = 10

// Run runs the interactive shell on the terminal on stdin until exit,
// Ctrl-D on an empty line, or a signal. Errors of commands are printed
// and the shell goes on.
func Run(ctx context.Context, env *tree.Env, o Options) error {
	fd := int(os.Stdin.Fd())
	saved, err := term.GetState(fd)
	if err != nil {
		return fmt.Errorf("stdin is not a terminal: %v", err)
	}
	var restoreMu sync.Mutex
	restore := func() {
		restoreMu.Lock()
		defer restoreMu.Unlock()
		_ = term.Restore(fd, saved)
	}
	defer restore()
	defer func() {
		if p := recover(); p != nil {
			restore()
			panic(p)
		}
	}()

	env.Interactive = true
	outFd := int(os.Stdout.Fd())
	setWidth := func() {
		if w, _, err := term.GetSize(outFd); err == nil && w > 20 {
			env.Width = w
		}
	}
	setWidth()

	// A running command is cancelled by SIGINT: Ctrl-C on the terminal
	// (keyReader.startCommand makes it a signal while a command runs) or
	// kill -INT. SIGTERM and SIGHUP restore the terminal and end gwcli.
	keys := newKeyReader(fd)
	var cmdMu sync.Mutex
	var cancelCmd context.CancelFunc
	var settled chan struct{}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, settleSignal)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			cmdMu.Lock()
			running := cancelCmd
			if s == settleSignal && settled != nil {
				close(settled)
				settled = nil
			}
			cmdMu.Unlock()
			if s == settleSignal {
				continue
			}
			if s == syscall.SIGINT && (running != nil || keys.noteInterrupt()) {
				if running != nil {
					running()
				}
				continue
			}
			restore()
			code := 128 + int(s.(syscall.Signal))
			os.Exit(code)
		}
	}()

	history := loadHistory(o.HistoryFile)
	var added []string
	executor := func(line string) {
		line = strings.TrimSpace(line)
		if line == "" {
			return
		}
		added = append(added, line)
		setWidth() // the window may have been resized since
		cctx, cancel := context.WithCancel(ctx)
		cmdMu.Lock()
		cancelCmd = cancel
		cmdMu.Unlock()
		interrupted, endCommand := keys.startCommand()
		if interrupted || keys.takeInterrupt() {
			cancel() // Ctrl-C typed right after Enter
		}
		defer func() {
			endCommand() // Ctrl-C is a key of the prompt again
			// A Ctrl-C pressed as the command ended may still be on its
			// way to the handler: it is for the command, not a SIGINT
			// ending gwcli. Signals reach the handler in order (the
			// lower number first when together), so once settleSignal,
			// raised now, is there, so is that SIGINT.
			done := make(chan struct{})
			cmdMu.Lock()
			settled = done
			cmdMu.Unlock()
			if syscall.Kill(os.Getpid(), settleSignal) == nil {
				select {
				case <-done:
				case <-time.After(100 * time.Millisecond):
				}
			}
			cmdMu.Lock()
			cancelCmd, settled = nil, nil
			cmdMu.Unlock()
			cancel()
		}()
		if err := runLine(cctx, env, line); err != nil {
			if cctx.Err() != nil {
				fmt.Fprintln(env.Err, "interrupted")
				return
			}
			fmt.Fprintln(env.Err, "error: "+oneLine(err.Error()))
		}
	}
	livePrefix := func() (string, bool) { return env.Cwd.String() + "> ", true }
	completer := func(d prompt.Document) []prompt.Suggest {
		var out []prompt.Suggest
		for _, s := range env.Complete(d.TextBeforeCursor()) {
			out = append(out, prompt.Suggest{Text: s.Text, Description: s.Desc})
		}
		// Only as many as fit below the line in the window as it is now
		// (go-prompt is told the window is tall; see keyReader).
		if cols, rows, err := term.GetSize(outFd); err == nil {
			prefix, _ := livePrefix()
			width := utf8.RuneCountInString(prefix + d.Text)
			out = out[:fitSuggestions(len(out), maxSuggestions, rows, cols, width)]
		}
		return out
	}
	if o.Banner != "" {
		fmt.Fprintln(env.Out, o.Banner)
	}
	env.Cache.Prefetch()
	p := prompt.New(executor, completer,
		prompt.OptionParser(keys),
		prompt.OptionTitle("gwcli"),
		prompt.OptionPrefix("/> "),
		prompt.OptionLivePrefix(livePrefix),
		prompt.OptionHistory(history),
		prompt.OptionMaxSuggestion(maxSuggestions),
		prompt.OptionCompletionWordSeparator(" "),
		prompt.OptionSetExitCheckerOnInput(func(in string, breakline bool) bool { return breakline && env.Exit }),
		// Ctrl-C discards the line being typed (go-prompt already starts a
		// new buffer); it never leaves gwcli: exit or Ctrl-D do.
		prompt.OptionAddKeyBind(prompt.KeyBind{Key: prompt.ControlC, Fn: func(b *prompt.Buffer) {
			b.DeleteBeforeCursor(len([]rune(b.Document().TextBeforeCursor())))
		}}),
		prompt.OptionPrefixTextColor(prompt.Blue),
		prompt.OptionSuggestionBGColor(prompt.LightGray),
		prompt.OptionSelectedSuggestionBGColor(prompt.DarkGray),
		prompt.OptionDescriptionBGColor(prompt.LightGray),
		prompt.OptionSelectedDescriptionBGColor(prompt.DarkGray),
	)
	p.Run()
	restore()
	saveHistory(o.HistoryFile, history, added)
	return nil
}

// runLine runs one line, turning a panic into an error so that the shell
// goes on.
func runLine(ctx context.Context, env *tree.Env, line string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	return env.Line(ctx, line)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func loadHistory(path string) []string {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > maxHistory {
		lines = lines[len(lines)-maxHistory:]
	}
	return lines
}

// saveHistory writes the history back, secrets left out: CHAP commands
// (auth, discovery_auth) are not kept unless they remove CHAP.
func saveHistory(path string, old, added []string) {
	if path == "" || len(added) == 0 {
		return
	}
	all := append([]string(nil), old...)
	for _, l := range added {
		if strings.Contains(l, "password") || (strings.Contains(l, "auth") && !strings.Contains(l, "nochap") && !strings.Contains(l, "_acl")) {
			continue
		}
		all = append(all, l)
	}
	if len(all) > maxHistory {
		all = all[len(all)-maxHistory:]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	w := bufio.NewWriter(f)
	for _, l := range all {
		io.WriteString(w, l+"\n")
	}
	if w.Flush() == nil && f.Close() == nil {
		_ = os.Rename(tmp, path)
		return
	}
	f.Close()
	os.Remove(tmp)
}
