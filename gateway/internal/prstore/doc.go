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
// unreachable (nobody can change the state then). Writes are
// compare-and-swap transactions (cluster.Store.CASPR); after a successful
// one the writer waits, boundedly, until every other live gateway reports
// through package peer that it has applied the new revision, so the
// command that caused the change completes only once the change is
// enforced everywhere: an initiator that is told its PERSISTENT RESERVE OUT
// succeeded finds it in effect on every path.
package prstore
