// Package listen keeps the daemon's iSCSI portals open: one listening
// socket per configured portal, served by one iscsi.Server.
package listen

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
)

// Portals keeps one listening socket per configured portal, opening new
// portals and closing removed ones on Apply. It is safe for concurrent use.
// Server.Shutdown closes the sockets still open.
type Portals struct {
	log    *slog.Logger
	server *iscsi.Server

	mu     sync.Mutex
	byAddr map[string]net.Listener
}

// New returns an empty set of portals served by s.
func New(log *slog.Logger, s *iscsi.Server) *Portals {
	return &Portals{log: log, server: s, byAddr: make(map[string]net.Listener)}
}

// Apply opens the portals ("ip:port") not open yet and closes those not
// listed. A portal that cannot be opened is reported and the others are
// still applied.
func (ls *Portals) Apply(portals []string) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	want := make(map[string]bool, len(portals))
	var errs []error
	for _, p := range portals {
		want[p] = true
		if ls.byAddr[p] != nil {
			continue
		}
		l, err := net.Listen("tcp", p)
		if err != nil {
			errs = append(errs, fmt.Errorf("portal %s: %w", p, err))
			continue
		}
		ls.byAddr[p] = l
		ls.log.Info("listening", "portal", p)
		go func() {
			if err := ls.server.Serve(l); err != nil && !errors.Is(err, iscsi.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				ls.log.Error("portal stopped", "portal", p, "err", err)
			}
		}()
	}
	for p, l := range ls.byAddr {
		if !want[p] {
			l.Close()
			delete(ls.byAddr, p)
			ls.log.Info("portal closed", "portal", p)
		}
	}
	return errors.Join(errs...)
}
