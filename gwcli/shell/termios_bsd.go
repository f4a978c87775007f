//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package shell

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
	// ioctlInQueue is how many bytes wait to be read.
	ioctlInQueue = 0x4004667f // FIONREAD, _IOR('f', 127, int)
	// vdisable turns a special character off (_POSIX_VDISABLE).
	vdisable = 0xff
)
