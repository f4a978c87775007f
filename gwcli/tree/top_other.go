//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package tree

import "io"

// openTopTerm: the live view needs a Unix terminal; elsewhere top prints
// snapshots.
func openTopTerm(io.Writer) (topTerm, bool) { return nil, false }

// openKeys: no single keys outside a Unix terminal.
func openKeys(io.Writer) (topTerm, bool) { return nil, false }
