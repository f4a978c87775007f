// Package node runs one gateway of a cluster: it connects to etcd (or
// runs an embedded single-member server), waits until the gateway is
// defined, registers its liveness lease, applies the configuration and
// every change to it through the reconciler, takes part in ALUA ownership
// and shared persistent reservations, and publishes the gateway's status.
//
// Run owns the node's state. What other goroutines read (Status, and the
// portal lists the iSCSI server asks for) is an immutable snapshot that
// Run replaces whole (an atomic pointer), so readers take no lock and see
// one consistent revision.
//
// Every gateway publishes a status document (Published: version, start
// time, API URL, portals, the configuration revision applied, the iSCSI
// sessions) in its lease-bound peers/<gateway> record, at most once a
// second when it changes and every 30 s otherwise. ReadCluster reports on
// every gateway from those records, and WaitApplied waits until the live
// gateways have applied a configuration revision, so that any gateway's
// REST API can answer for all of them. See docs/cluster.md.
package node
