package main

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// dialEtcd connects the daemon's etcd client (cluster.Dial caps the
// reconnect backoff so a gateway returns soon after etcd does).
func dialEtcd(endpoints []string) (*clientv3.Client, error) {
	return cluster.Dial(cluster.ClientConfig{Endpoints: endpoints})
}
