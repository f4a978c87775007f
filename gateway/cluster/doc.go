// Package cluster keeps the gateway cluster's configuration in etcd: the
// key schema (docs/cluster-schema.md), a Store through which every writer
// validates and commits changes with revision-checked transactions, a
// Watch that turns etcd events into whole-state snapshots and survives
// compaction and etcd restarts, lease-bound gateway liveness, ALUA LUN
// ownership with a fencing epoch, and compare-and-swap storage for
// persistent reservation state.
//
// A daemon loads or watches the state and renders its own config.Config
// with Render; the REST API reads with Load and writes with typed ops
// through Commit, Apply or Update.
package cluster
