// Package prstore keeps the state that the SCSI device server of a logical
// unit shares across gateways in etcd: persistent reservations, the SPC-2
// reservation, and a count of logical unit resets. Every gateway serving a
// disk then enforces the same registrations and reservation, they survive
// a gateway restart, and a LOGICAL UNIT RESET received by one gateway
// establishes its unit attention on the I_T nexuses of the others.
//
// Reads never leave the gateway: each gateway follows the pr/ keys with
// one etcd watch and serves pr.Store.Get from memory, so the conflict check
// of every command costs no round trip and keeps working while etcd is
// unreachable. Writes are compare-and-swap transactions
// (cluster.Store.CASPR). A reservation change then completes only once
// every gateway serving the disk has applied it, or has been fenced (its
// Ceph client, recorded in clients/, put in the OSD blocklist): a gateway
// that does not confirm within the acknowledgement timeout, or is not live
// at all, may still act on the old state, and only the blocklist stops
// that. When neither can be established the change stays committed and
// the command fails (ErrNotConfirmed).
//
// The record carries the effects of the newest changes on I_T nexuses
// (unit attentions, and the nexuses whose tasks PREEMPT AND ABORT aborts),
// and every other gateway applies them, waiting for the aborted tasks to
// end, before it confirms: an initiator told that its PERSISTENT RESERVE
// OUT succeeded finds it in effect on every path, and no task of a
// preempted nexus can still reach the medium. See docs/adr/0007.
package prstore
