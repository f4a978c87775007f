package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// In cluster mode GET /metrics is served on the REST API's listener; a
// standalone gateway has no API and serves it on a listener of its own.
var (
	metricsAddr = flag.String("metrics", "", "standalone mode: serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9287; plain HTTP only on loopback, else give -metrics-cert and -metrics-key (cluster mode serves /metrics on the -api listener)")
	metricsCert = flag.String("metrics-cert", "", "standalone mode: TLS certificate (PEM) of the -metrics listener")
	metricsKey  = flag.String("metrics-key", "", "standalone mode: TLS key (PEM) of the -metrics listener")
	ioMetrics   = flag.Bool("io-metrics", true, "standalone mode: count commands, bytes, errors and latency per LUN, gateway and session; false only to measure what counting costs (deploy/bench/metrics-cost.sh)")
)

// newStandaloneMetrics returns the counters of a standalone gateway,
// labelled with the host name, and serves them when -metrics asks for it.
func newStandaloneMetrics(log *slog.Logger) (*metrics.Registry, error) {
	if !*ioMetrics {
		if *metricsAddr != "" {
			return nil, errors.New("-metrics serves the counters that -io-metrics=false turns off")
		}
		log.Warn("I/O metrics off (-io-metrics=false): nothing is counted")
		return nil, nil
	}
	name, err := os.Hostname()
	if err != nil {
		name = "rbdgw"
	}
	reg := metrics.NewRegistry(metrics.Options{Gateway: name, Version: version})
	if *metricsAddr == "" {
		return reg, nil
	}
	ln, err := listenMetrics(*metricsAddr, *metricsCert, *metricsKey)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, log))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "addr", *metricsAddr, "err", err)
		}
	}()
	log.Info("metrics serving", "url", "http://"+ln.Addr().String()+"/metrics", "tls", *metricsCert != "")
	return reg, nil
}

// listenMetrics opens the -metrics listener: plain HTTP on loopback only,
// as the REST API.
func listenMetrics(addr, cert, key string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics %q: %w", addr, err)
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("-metrics-cert and -metrics-key go together")
	}
	if a, perr := netip.ParseAddr(host); cert == "" && host != "localhost" && (perr != nil || !a.IsLoopback()) {
		return nil, fmt.Errorf("-metrics %s: plain HTTP is served only on a loopback address; give -metrics-cert and -metrics-key to serve HTTPS on %s", addr, host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	if cert == "" {
		return ln, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics certificate: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}), nil
}
