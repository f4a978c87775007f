package main

import (
	"flag"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
)

var pprofAddr = flag.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; empty: off")

// startPprof serves profiles for performance work. It is off unless asked
// for, and should listen on loopback only: profiles reveal internals.
func startPprof(log *slog.Logger) {
	if *pprofAddr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
			log.Error("pprof server stopped", "addr", *pprofAddr, "err", err)
		}
	}()
}
