package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

var pprofAddr = flag.String("pprof", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; empty: off")

// startPprof serves profiles for performance work. It is off unless asked
// for, and only on loopback: profiles and goroutine dumps reveal
// internals (and memory contents), and the endpoint has no
// authentication. Reach it from elsewhere through an SSH tunnel.
func startPprof(log *slog.Logger) error {
	if *pprofAddr == "" {
		return nil
	}
	l, err := listenPprof(*pprofAddr)
	if err != nil {
		return err
	}
	// Its own mux: nothing else registered on http.DefaultServeMux is
	// served with the profiles.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof serving", "addr", l.Addr().String())
	go func() {
		if err := http.Serve(l, mux); err != nil {
			log.Error("pprof server stopped", "addr", *pprofAddr, "err", err)
		}
	}()
	return nil
}

// listenPprof listens on addr if it is a loopback address.
func listenPprof(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof %q: %w", addr, err)
	}
	if !cluster.IsLoopbackHost(host) {
		return nil, fmt.Errorf("-pprof %q: profiles are served on loopback only (127.0.0.1, ::1 or localhost); use an SSH tunnel to reach them", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: %w", err)
	}
	// "localhost" may resolve to anything; what was bound is what counts.
	if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("-pprof %q: bound %s, not a loopback address", addr, ip)
	}
	return l, nil
}
