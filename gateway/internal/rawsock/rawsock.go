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
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a net.Conn whose Read, Write and Writev use raw system calls.
// Deadlines, Close and the addresses are the wrapped connection's. A read
// and a write may run at the same time; reads wait for each other, as do
// writes.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	// The state of the read and of the write in progress, and the
	// functions the RawConn calls, made once: a closure made per call
	// would be allocated per call.
	readMu   sync.Mutex
	readBuf  []byte
	readN    int
	readErr  syscall.Errno
	readFn   func(fd uintptr) bool
	writeMu  sync.Mutex
	iov      []syscall.Iovec // backing array, reused
	pending  []syscall.Iovec // what is still to be written
	written  int64
	writeErr syscall.Errno
	writeFn  func(fd uintptr) bool
	tryFn    func(fd uintptr) bool
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
	c := &Conn{Conn: nc, rc: rc}
	c.readFn = c.readSome
	c.writeFn = c.writeSome
	c.tryFn = func(fd uintptr) bool {
		c.writeSome(fd)
		return true // never wait for the socket to become writable
	}
	return c
}

// maxIovecs is the kernel's IOV_MAX: a longer writev fails with EINVAL.
const maxIovecs = 1024

// Read reads into p; it returns io.EOF when the peer closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.readBuf, c.readN, c.readErr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.readN, c.readErr
	c.readBuf = nil
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

// readSome makes one read(2) of readBuf; false means the socket has
// nothing yet and the RawConn waits until it has.
func (c *Conn) readSome(fd uintptr) bool {
	p := c.readBuf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.readN, c.readErr = int(r), e
		return true
	}
}

// Write writes all of p.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Writev([][]byte{p})
	return int(n), err
}

// Writev writes the buffers in order with as few writev calls as the
// socket allows, and returns how many bytes went out.
func (c *Conn) Writev(bufs [][]byte) (int64, error) {
	return c.writev(bufs, true)
}

// TryWritev writes what the socket takes now, in order, without waiting
// for it to become writable, and returns how many bytes went out: fewer
// than asked, with a nil error, when the socket is full.
func (c *Conn) TryWritev(bufs [][]byte) (int64, error) {
	return c.writev(bufs, false)
}

func (c *Conn) writev(bufs [][]byte, wait bool) (int64, error) {
	fn := c.tryFn
	if wait {
		fn = c.writeFn
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	all := c.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			all = append(all, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
		}
	}
	c.pending, c.written, c.writeErr = all, 0, 0
	var err error
	for len(c.pending) > 0 && err == nil && c.writeErr == 0 {
		err = c.rc.Write(fn)
		if !wait {
			break
		}
	}
	total, errno := c.written, c.writeErr
	clear(all) // drop the references to the callers' buffers
	c.iov, c.pending = all[:0], nil
	switch {
	case err != nil:
		return total, c.opError("write", err)
	case errno != 0:
		return total, c.opError("write", os.NewSyscallError("writev", errno))
	}
	return total, nil
}

// writeSome writes pending until it is all written (true), the socket is
// full (false: the RawConn waits until it is writable), or writev fails.
func (c *Conn) writeSome(fd uintptr) bool {
	for len(c.pending) > 0 {
		batch := c.pending[:min(len(c.pending), maxIovecs)]
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&batch[0])), uintptr(len(batch)))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.writeErr = e
			return true
		}
		c.written += int64(r)
		c.pending = consume(c.pending, uint64(r))
	}
	return true
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
