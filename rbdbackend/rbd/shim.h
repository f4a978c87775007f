// Thin C layer over librbd for what go-ceph does not expose: asynchronous
// I/O whose completions are queued for Go and signalled through an eventfd,
// compare-and-write, and extent iteration without a Go callback per extent.
#ifndef RBDGW_SHIM_H
#define RBDGW_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

enum rbdgw_op {
	RBDGW_OP_READ = 1,
	RBDGW_OP_WRITE,
	RBDGW_OP_DISCARD,
	RBDGW_OP_WRITESAME,
	RBDGW_OP_COMPARE_AND_WRITE,
	RBDGW_OP_FLUSH,
};

// rbdgw_open creates an ioctx for pool on cluster and opens the image head
// (read-only when read_only != 0). On error nothing is left open.
int rbdgw_open(rados_t cluster, const char *pool, const char *name,
	       int read_only, rados_ioctx_t *ioctx, rbd_image_t *image);

// rbdgw_close closes the image and destroys its ioctx; returns rbd_close's
// result.
int rbdgw_close(rados_ioctx_t ioctx, rbd_image_t image);

// rbdgw_done is one completed operation: its tag, librbd's result and, for
// a compare-and-write miscompare, the offset of the first differing byte.
struct rbdgw_done {
	uintptr_t tag;
	ssize_t ret;
	uint64_t mismatch;
};

// rbdgw_completions_init creates the eventfd that signals completions and
// returns it (or a negative errno). Called once, before any rbdgw_submit.
int rbdgw_completions_init(void);

// rbdgw_drain moves up to max completions into out and returns how many.
// The eventfd is written when a completion arrives to an empty queue, so a
// reader reads the eventfd, then drains until fewer than max come back.
int rbdgw_drain(struct rbdgw_done *out, int max);

// rbdgw_submit starts one asynchronous operation. On success (0) exactly
// one completion with tag follows, queued for rbdgw_drain (or, if the queue
// cannot grow, a call of the Go function rbdgwComplete from a librbd
// thread); on failure (< 0) none does. buf and cmp must stay valid until
// then. aux is the pattern length for WRITESAME.
int rbdgw_submit(rbd_image_t image, int op, uint64_t off, uint64_t len,
		 char *buf, char *cmp, uint64_t aux, uintptr_t tag);

// rbdgw_run is rbdgw_submit followed by waiting for the completion in the
// calling thread; it returns the operation's result.
ssize_t rbdgw_run(rbd_image_t image, int op, uint64_t off, uint64_t len,
		  char *buf, char *cmp, uint64_t aux, uint64_t *mismatch);

// rbdgw_extents reports up to max allocated extents in [off, off+len) in
// object granularity (whole_object with the object map when present).
// Returns 0 when the range was fully scanned, 1 when max was reached first,
// or a negative errno.
int rbdgw_extents(rbd_image_t image, uint64_t off, uint64_t len,
		  uint64_t *offs, uint64_t *lens, int max, int *n);

// rbdgw_update_watch registers for header updates (resize, features); each
// update calls the Go function rbdgwUpdated(tag).
int rbdgw_update_watch(rbd_image_t image, uint64_t *handle, uintptr_t tag);

#endif
