package cluster

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// probeTimeout bounds each step of the probe of one endpoint.
const probeTimeout = 2 * time.Second

// probe asks the etcd endpoints for /health over the connection the client
// will use (plain or TLS, with the same certificates) and returns an error
// only for a definite mismatch: a certificate the client does not trust, a
// client certificate the server refuses, TLS against a plain server or the
// reverse. gRPC would retry those silently forever; this makes a
// misconfigured gateway stop at once with the reason. An endpoint that
// does not answer (etcd still starting) is not an error, and one endpoint
// that answers well is enough.
func probe(cfg ClientConfig) error {
	var first error
	for _, ep := range cfg.Endpoints {
		ok, err := probeEndpoint(ep, cfg.TLS)
		if ok {
			return nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// probeEndpoint reports ok when the endpoint answered HTTP over the
// expected transport, and an error when it answered in a way that shows
// the configuration is wrong.
func probeEndpoint(ep string, tc *tls.Config) (ok bool, err error) {
	u, err := url.Parse(ep)
	if err != nil {
		return false, nil
	}
	conn, err := net.DialTimeout("tcp", u.Host, probeTimeout)
	if err != nil {
		return false, nil // not listening (yet): gRPC waits for it
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	var rw io.ReadWriter = conn
	if u.Scheme == "https" {
		c := tc.Clone()
		if c.ServerName == "" {
			c.ServerName = u.Hostname()
		}
		c.NextProtos = []string{"http/1.1"}
		tconn := tls.Client(conn, c)
		if err := tconn.Handshake(); err != nil {
			return false, tlsProblem(ep, err)
		}
		rw = tconn
	}
	req := "GET /health HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(rw, req); err != nil {
		return false, tlsProblem(ep, err)
	}
	line, err := bufio.NewReader(rw).ReadSlice('\n')
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.")) && bytes.Contains(line, []byte(" 400 ")) && u.Scheme == "http":
		// Go's TLS server answers a plain request with 400 "Client sent
		// an HTTP request to an HTTPS server".
		return false, fmt.Errorf("etcd endpoint %s: the server speaks TLS: use https:// with -etcd-cacert (and -etcd-cert/-etcd-key)", ep)
	case bytes.HasPrefix(line, []byte("HTTP/1.")):
		return true, nil
	case u.Scheme == "http" && (len(line) > 0 && line[0] == 0x15 || len(line) == 0 && errors.Is(err, io.EOF)):
		// A TLS alert record, or etcd's TLS listener closing the
		// connection after a request that is not a TLS handshake.
		return false, fmt.Errorf("etcd endpoint %s closed a plain-HTTP connection without answering: the server speaks TLS: use https:// with -etcd-cacert (and -etcd-cert/-etcd-key)", ep)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case err != nil && u.Scheme == "https":
		return false, tlsProblem(ep, err)
	}
	return false, nil
}

// tlsProblem explains a TLS failure.
func tlsProblem(ep string, err error) error {
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &rec):
		return fmt.Errorf("etcd endpoint %s does not speak TLS (%v): use http:// for a plain server, on loopback or with -etcd-insecure", ep, err)
	case isRemoteTLSError(err):
		return fmt.Errorf("etcd endpoint %s refused this client's TLS connection (%v): it requires a client certificate signed by a CA it trusts (-etcd-cert, -etcd-key)", ep, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	}
	return fmt.Errorf("etcd endpoint %s: TLS: %w (-etcd-cacert names the CA that signs the server's certificate)", ep, err)
}

// isRemoteTLSError recognises an alert sent by the server ("remote error:
// tls: ..."), which crypto/tls does not export as a type.
func isRemoteTLSError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls:")
}
