// Package peer publishes what the gateways of a cluster need to know about
// each other at run time and that is not configuration: each gateway's
// Ceph client address (so that a gateway taking over a disk fences only
// the clients of gateways that are gone) and the newest revision of shared
// logical unit state it has applied (so that a gateway that changed that
// state can wait until every gateway serving the disk enforces it, and
// fence those that do not confirm).
//
// Each gateway owns one key, peers/<gateway> under the cluster prefix,
// bound to its liveness lease: the key exists exactly as long as the
// gateway is registered. See docs/cluster.md.
package peer
