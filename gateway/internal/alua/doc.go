// Package alua gives every logical unit of a gateway cluster one owner
// gateway and derives the asymmetric logical unit access (ALUA) states
// that every gateway reports from it, identically: the owner's target port
// group is Active/Optimized and preferred, the others Active/Non-optimized
// (implicit ALUA, TPGS 01b).
//
// Ownership lives in etcd (cluster.Store.ClaimOwner, an epoch
// compare-and-swap) and moves:
//   - when a disk has no owner yet: the live gateways serving it agree on
//     one (Plan spreads disks evenly) and that one claims it;
//   - when the owner's lease has been gone for a grace period: the gateway
//     Plan picks claims it and fences the Ceph clients of gateways that
//     are gone and still hold the image's exclusive lock (OSD blocklist),
//     so the old owner can never write again;
//   - when a write through this gateway stays blocked because another
//     client holds the exclusive lock and does not hand it over (its
//     gateway hangs, or is cut off from the initiator and Ceph but not
//     dead yet): this gateway fences that client, then claims the disk.
//
// Between live gateways the exclusive lock itself moves cooperatively:
// librbd hands it to the client that writes, after the previous holder
// has completed its in-flight writes. A write through a non-optimized path
// is therefore served (more slowly) without an ownership change, so
// initiators that use every path at once, and hosts of a cluster that
// reach a disk through different gateways, see no unit attention storm.
// While this gateway takes a disk over, its port group reports
// Transitioning (NOT READY, 04h/0Ah); every ownership change establishes
// ASYMMETRIC ACCESS STATE CHANGED (2Ah/06h) on every I_T nexus of every
// gateway.
package alua
