// Package rbd is the librbd implementation of rbdbackend.Image, plus the
// image lifecycle (create, remove, resize, snapshots, info) and the
// exclusive-lock and fencing operations a gateway needs.
//
// Build: cgo against librbd/librados with the Ceph release codename as a
// build tag. Debian 12 ships Ceph 16.2, so the tag set is "pacific":
//
//	go build -tags pacific ./...
//
// Without the tag this package is empty (every other file carries
// //go:build pacific), so Ceph-free builds of the rest of the module work.
//
// One Cluster (one rados client) per process serves every image. Data I/O
// goes through librbd's asynchronous API (see shim.c) so that the whole
// queue depth of the initiators reaches librbd without one blocked OS
// thread per command.
//
// Behaviour the SCSI layer relies on:
//   - Reads of discarded ranges return zeroes, at any alignment: the
//     client is configured with rbd_skip_partial_discard=false.
//   - Extent (GET LBA STATUS) is object-granular: an object that holds any
//     data is reported allocated as a whole; unallocated really reads zero.
//   - CompareAndWrite of at most 512 bytes inside one 512-byte sector runs
//     as librbd's atomic compare-and-write (an OSD-side compare); other
//     sizes need this client to hold the image's exclusive lock
//     (Image.AcquireLock) and are done as read, compare, write under it.
//   - Writes need the image's exclusive lock. A handle that never called
//     AcquireLock takes a free lock by itself on its first write (librbd's
//     cooperative mode). Once AcquireLock was called on it (even if that
//     failed), the lock is managed: writes without it fail at once with
//     ErrLockLost, and librbd never hands it to another client on request;
//     TakeLock (or BreakLock) fences the holder and moves it.
//   - ErrLockLost on a write means another client holds the lock or this
//     client was blocklisted. After a blocklist the Cluster reconnects by
//     itself with a new client address and reopens every image; reads then
//     work again, writes only with the lock. ErrTimeout means
//     rados_osd_op_timeout (Config.OSDOpTimeout) passed.
package rbd
