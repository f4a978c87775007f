//go:build !pacific

package main

import (
	"errors"

	"github.com/rbdgw/rbdgw/api"
)

func apiCeph(*backends) (api.Ceph, error) {
	return nil, errors.New("built without librbd (-tags pacific)")
}
