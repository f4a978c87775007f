package rawsock

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client end and the plain server end of a
// loopback TCP connection.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { nc.Close(); srv.Close() })
	c, ok := Wrap(nc).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	return c, srv
}

func TestWrapLeavesOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a net.Pipe end was wrapped")
	}
}

// Writev sends every byte in order, also when the buffers outnumber
// IOV_MAX and the socket fills up so that it must wait for the reader.
func TestWritevLargeAndMany(t *testing.T) {
	c, srv := pair(t)
	var want []byte
	var bufs [][]byte
	for i := range 3000 {
		n := 1 + rand.IntN(8<<10)
		if i%500 == 0 {
			bufs = append(bufs, nil) // empty buffers are skipped
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the socket buffers fill first
		b, _ := io.ReadAll(srv)
		got <- b
	}()
	n, err := c.Writev(bufs)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Writev = %d, %v; want %d bytes", n, err, len(want))
	}
	c.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, not the %d sent in order", len(b), len(want))
	}
}

func TestReadDataEOFAndErrors(t *testing.T) {
	c, srv := pair(t)
	go func() {
		time.Sleep(20 * time.Millisecond) // Read waits for it
		srv.Write([]byte("hello"))
		srv.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want io.EOF", n, err)
	}

	c, _ = pair(t)
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err = c.Read(make([]byte, 4))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}

	c, _ = pair(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read of a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write to a closed connection: %v, want net.ErrClosed", err)
	}
}

// A write to a peer that has gone reports the socket's error.
func TestWriteToResetPeer(t *testing.T) {
	c, srv := pair(t)
	srv.(*net.TCPConn).SetLinger(0)
	srv.Close() // sends a reset
	time.Sleep(20 * time.Millisecond)
	var err error
	for range 100 {
		if _, err = c.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("writes to a reset peer: %v, want a write error", err)
	}
}

// TryWritev returns at once with what a full socket took; what it took
// arrives in order, and the rest can follow once the peer reads.
func TestTryWritevNeverWaits(t *testing.T) {
	c, srv := pair(t)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var sent []byte
	full := false
	for i := 0; i < 1000 && !full; i++ {
		done := make(chan struct{})
		var n int64
		var err error
		go func() {
			n, err = c.TryWritev([][]byte{chunk[:len(chunk)/2], chunk[len(chunk)/2:]})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("TryWritev waited for the socket")
		}
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, chunk[:n]...)
		full = n < int64(len(chunk))
	}
	if !full {
		t.Fatal("the socket never filled up")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(srv, int64(len(sent)+len(chunk))))
		got <- b
	}()
	if _, err := c.Writev([][]byte{chunk}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append(sent, chunk...)) {
		t.Fatalf("the peer read %d bytes, not the %d sent in order", len(b), len(sent)+len(chunk))
	}
}
