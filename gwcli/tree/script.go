package tree

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
)

// ScriptError is the first failing line of a script.
type ScriptError struct {
	Name string
	Line int
	Err  error
}

func (e *ScriptError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }
func (e *ScriptError) Unwrap() error { return e.Err }

// RunScript runs one command per line (blank lines and '#' comments
// skipped; cd carries over to the next lines) and stops at the first
// error, which it returns with its line number.
func (e *Env) RunScript(ctx context.Context, r io.Reader, name string) error {
	// A script is a session: create cd's into what it made, as in the shell,
	// so that ceph-iscsi's walkthroughs run as they are written.
	e.Interactive = true
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := e.Line(ctx, line); err != nil {
			return &ScriptError{Name: name, Line: n, Err: err}
		}
		if e.Exit {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}
