//go:build !pacific

package main

import (
	"errors"
	"log/slog"
)

// connectRBD fails in builds without librbd (built without the Ceph
// release tag; see the README).
func connectRBD(*slog.Logger, string, string) (rbdConnection, error) {
	return nil, errors.New("rbd disks need a build with librbd: build with -tags pacific")
}
