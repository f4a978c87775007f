package shell

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
	// ioctlInQueue is how many bytes wait to be read.
	ioctlInQueue = unix.TIOCINQ
	// vdisable turns a special character off (_POSIX_VDISABLE).
	vdisable = 0
)
