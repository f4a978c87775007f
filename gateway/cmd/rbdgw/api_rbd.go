//go:build pacific

package main

import (
	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/wire"
)

// apiCeph is the API's view of this process's Ceph client.
func apiCeph(b *backends) (api.Ceph, error) {
	conn, err := b.connect()
	if err != nil {
		return nil, err
	}
	return wire.Ceph{C: conn.(*rbdClient).Cluster}, nil
}
