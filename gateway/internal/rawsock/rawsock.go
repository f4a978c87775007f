// Package rawsock reads and writes a connected socket with raw system calls,
// waiting through the runtime's netpoller as net.Conn does.
//
// Why: a read or write through net.Conn enters the runtime's system call
// state, and the first one after every goroutine of the process went idle
// wakes the runtime's monitor thread (sysmon), which then polls every 20 µs
// for a millisecond before it backs off. A target that answers a queue of
// small commands goes idle and busy thousands of times a second, so the
// monitor never backs off: under 4 KiB writes it cost 15-18 % of the
// gateway's CPU (docs/performance.md). The socket is non-blocking, so a raw
// read or writev returns at once (EAGAIN when it would block, and then the
// netpoller waits for the socket), and skipping the system call state loses
// nothing.
package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn is a net.Conn whose Read, Write and Writev use raw system calls.
// Deadlines, Close and the addresses are the wrapped connection's.
type Conn struct {
	net.Conn
	rc  syscall.RawConn
	iov []syscall.Iovec
}

// Wrap returns nc as a Conn when it is a socket the runtime polls, and nc
// itself otherwise (a net.Pipe in tests, a TLS connection).
func Wrap(nc net.Conn) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	return &Conn{Conn: nc, rc: rc}
}

// maxIovecs is the kernel's IOV_MAX: a longer writev fails with EINVAL.
const maxIovecs = 1024

// Read reads into p; it returns io.EOF when the peer closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Writev([][]byte{p})
	return int(n), err
}

// Writev writes the buffers in order with as few writev calls as the
// socket allows, and returns how many bytes went out.
func (c *Conn) Writev(bufs [][]byte) (int64, error) {
	all := c.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			all = append(all, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
		}
	}
	iov := all
	var total int64
	var errno syscall.Errno
	var err error
	for len(iov) > 0 && err == nil && errno == 0 {
		err = c.rc.Write(func(fd uintptr) bool {
			for len(iov) > 0 {
				batch := iov[:min(len(iov), maxIovecs)]
				r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&batch[0])), uintptr(len(batch)))
				switch e {
				case 0:
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					return false // wait until writable
				default:
					errno = e
					return true
				}
				total += int64(r)
				iov = consume(iov, uint64(r))
			}
			return true
		})
	}
	clear(all) // drop the references to the callers' buffers
	c.iov = all[:0]
	switch {
	case err != nil:
		return total, c.opError("write", err)
	case errno != 0:
		return total, c.opError("write", os.NewSyscallError("writev", errno))
	}
	return total, nil
}

// consume drops the first n bytes from iov.
func consume(iov []syscall.Iovec, n uint64) []syscall.Iovec {
	for len(iov) > 0 && n >= iov[0].Len {
		n -= iov[0].Len
		iov = iov[1:]
	}
	if n > 0 {
		iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
		iov[0].Len -= n
	}
	return iov
}

// opError wraps err as net.Conn's methods do, so that callers see the same
// errors (net.ErrClosed, os.ErrDeadlineExceeded, a syscall errno).
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
