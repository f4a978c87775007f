package tree

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestHelpFitsTheWindow: the list of commands kept top's and events'
// usages in a 44-column field they do not fit, so their summaries ran off
// the column and wrapped mid-word on an 80- or 120-column terminal.
func TestHelpFitsTheWindow(t *testing.T) {
	_, e, _, _ := fixture(t)
	usages := map[string]bool{} // a usage is one line, however long
	for _, cs := range byKind {
		for _, c := range cs {
			usages[c.Usage] = true
		}
	}
	for _, width := range []int{80, 120} {
		e.Width = width
		for _, line := range []string{"help", "help top", "help events", "/disks help", "/disks help create"} {
			out := mustRun(t, e, line)
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if n := utf8.RuneCountInString(l); n >= width && !usages[strings.TrimSpace(l)] {
					t.Errorf("%s, %d columns: a line of %d: %q", line, width, n, l)
				}
			}
		}
	}
	for _, width := range []int{80, 120} {
		e.Width = width
		out := mustRun(t, e, "help")
		if !regexp.MustCompile(`\n  top \[sort=<key>\] \[count=<n>\] \[interval=1s\] \[window=5s\] \[gateway=<name>\]\n {20,}live IOPS`).MatchString(out) {
			t.Errorf("%d columns: top's usage and summary:\n%s", width, out)
		}
		if !regexp.MustCompile(`\n  ls \[path\] \[depth\] +list the tree below a node with status summaries\n`).MatchString(out) {
			t.Errorf("%d columns: a short usage and its summary are not one line:\n%s", width, out)
		}
	}
	// A keyword with a few values shows its name (block_size=512|4096 is
	// what one types, 512|4096 alone is refused); an action has none.
	out := mustRun(t, e, "/disks help create")
	if !strings.Contains(out, "  block_size=512|4096 ") {
		t.Errorf("/disks help create:\n%s", out)
	}
	out = mustRun(t, e, "/iscsi-targets/"+tIQN+"/hosts/"+hIQN+" help disk")
	if !regexp.MustCompile(`\n  add\|remove +`).MatchString(out) {
		t.Errorf("help disk:\n%s", out)
	}
	// A path is typed bare, as the usage shows it.
	out = mustRun(t, e, "help cd")
	if !strings.Contains(out, "  <path>") || strings.Contains(out, "path=") {
		t.Errorf("help cd:\n%s", out)
	}
}
