package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// ListenOptions say where and how the API listens.
type ListenOptions struct {
	// Addr is "host:port"; the host must be an IP address (or localhost).
	Addr string
	// CertFile and KeyFile enable TLS. Without them only a loopback
	// address is accepted: tokens must not cross a network in clear text.
	CertFile, KeyFile string
}

// DefaultPort is the API's port, as ceph-iscsi's rbd-target-api.
const DefaultPort = 5000

// Listen opens the API's listener after checking the transport rule.
func Listen(o ListenOptions) (net.Listener, error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("-api %q: %w", o.Addr, err)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("-api-cert and -api-key go together")
	}
	if o.CertFile == "" && !loopback(host) {
		return nil, fmt.Errorf("-api %s: plain HTTP is served only on a loopback address; give -api-cert and -api-key to serve HTTPS on %s", o.Addr, host)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	if o.CertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("API certificate: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Serve serves h on ln until ctx ends, then lets requests in flight
// finish for a few seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		// wait=applied may hold a request up to 5 minutes.
		WriteTimeout:   6 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-done
	return nil
}
