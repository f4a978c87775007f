//go:build pacific

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "shim.h"
#include "_cgo_export.h"

int rbdgw_open(rados_t cluster, const char *pool, const char *name,
	       int read_only, rados_ioctx_t *ioctx, rbd_image_t *image)
{
	int r = rados_ioctx_create(cluster, pool, ioctx);
	if (r < 0)
		return r;
	if (read_only)
		r = rbd_open_read_only(*ioctx, name, image, NULL);
	else
		r = rbd_open(*ioctx, name, image, NULL);
	if (r < 0) {
		rados_ioctx_destroy(*ioctx);
		*ioctx = NULL;
	}
	return r;
}

int rbdgw_close(rados_ioctx_t ioctx, rbd_image_t image)
{
	int r = rbd_close(image);
	rados_ioctx_destroy(ioctx);
	return r;
}

// One per compare-and-write: librbd writes the mismatch offset at
// completion time, so it needs memory that outlives the submitting call.
struct rbdgw_caw {
	uintptr_t tag;
	uint64_t mismatch;
};

// Completions wait in done_q until Go drains them (rbdgw_drain). librbd's
// thread only appends and, when the queue was empty, writes the eventfd the
// Go side waits on through its netpoller: no librbd thread enters Go, which
// would take a Go scheduler P, ready a goroutine on it and leave the P in a
// system call state that only sysmon takes back.
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rbdgw_done *done_q;
static size_t done_len, done_cap;
static int done_fd = -1;

int rbdgw_completions_init(void)
{
	done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return done_fd < 0 ? -errno : done_fd;
}

static void complete(uintptr_t tag, ssize_t r, uint64_t mismatch)
{
	int wake;

	pthread_mutex_lock(&done_mu);
	if (done_len == done_cap) {
		size_t cap = done_cap ? 2 * done_cap : 256;
		struct rbdgw_done *q = realloc(done_q, cap * sizeof(*q));
		if (q == NULL) {
			// Out of memory: deliver this one the slow way.
			pthread_mutex_unlock(&done_mu);
			rbdgwComplete(tag, r, mismatch);
			return;
		}
		done_q = q;
		done_cap = cap;
	}
	wake = done_len == 0;
	done_q[done_len++] = (struct rbdgw_done){ tag, r, mismatch };
	pthread_mutex_unlock(&done_mu);
	if (wake) {
		uint64_t one = 1;
		// Cannot fail short of a counter overflow, which a reader
		// that drains before every read rules out.
		(void)!write(done_fd, &one, sizeof(one));
	}
}

int rbdgw_drain(struct rbdgw_done *out, int max)
{
	size_t n;

	pthread_mutex_lock(&done_mu);
	n = done_len < (size_t)max ? done_len : (size_t)max;
	memcpy(out, done_q, n * sizeof(*out));
	memmove(done_q, done_q + n, (done_len - n) * sizeof(*out));
	done_len -= n;
	pthread_mutex_unlock(&done_mu);
	return (int)n;
}

static void rbdgw_done(rbd_completion_t c, void *arg)
{
	ssize_t r = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	complete((uintptr_t)arg, r, 0);
}

static void rbdgw_caw_done(rbd_completion_t c, void *arg)
{
	struct rbdgw_caw *caw = arg;
	ssize_t r = rbd_aio_get_return_value(c);
	uintptr_t tag = caw->tag;
	uint64_t mismatch = caw->mismatch;
	rbd_aio_release(c);
	free(caw);
	complete(tag, r, mismatch);
}

static int start(rbd_image_t image, int op, uint64_t off, uint64_t len,
		 char *buf, char *cmp, uint64_t aux, uint64_t *mismatch,
		 rbd_completion_t c)
{
	switch (op) {
	case RBDGW_OP_READ:
		return rbd_aio_read(image, off, len, buf, c);
	case RBDGW_OP_WRITE:
		return rbd_aio_write(image, off, len, buf, c);
	case RBDGW_OP_DISCARD:
		return rbd_aio_discard(image, off, len, c);
	case RBDGW_OP_WRITESAME:
		return rbd_aio_writesame(image, off, len, buf, aux, c, 0);
	case RBDGW_OP_COMPARE_AND_WRITE:
		return (int)rbd_aio_compare_and_write(image, off, len, cmp, buf, c, mismatch, 0);
	case RBDGW_OP_FLUSH:
		return rbd_aio_flush(image, c);
	}
	return -EINVAL;
}

int rbdgw_submit(rbd_image_t image, int op, uint64_t off, uint64_t len,
		 char *buf, char *cmp, uint64_t aux, uintptr_t tag)
{
	rbd_completion_t c;
	struct rbdgw_caw *caw = NULL;
	int r;

	if (op == RBDGW_OP_COMPARE_AND_WRITE) {
		caw = calloc(1, sizeof(*caw));
		if (caw == NULL)
			return -ENOMEM;
		caw->tag = tag;
		r = rbd_aio_create_completion(caw, rbdgw_caw_done, &c);
	} else {
		r = rbd_aio_create_completion((void *)tag, rbdgw_done, &c);
	}
	if (r < 0) {
		free(caw);
		return r;
	}
	r = start(image, op, off, len, buf, cmp, aux, caw ? &caw->mismatch : NULL, c);
	if (r < 0) {
		// librbd rejected the request before queueing it: no callback.
		rbd_aio_release(c);
		free(caw);
	}
	return r;
}

ssize_t rbdgw_run(rbd_image_t image, int op, uint64_t off, uint64_t len,
		  char *buf, char *cmp, uint64_t aux, uint64_t *mismatch)
{
	rbd_completion_t c;
	ssize_t r = rbd_aio_create_completion(NULL, NULL, &c);
	if (r < 0)
		return r;
	r = start(image, op, off, len, buf, cmp, aux, mismatch, c);
	if (r >= 0) {
		rbd_aio_wait_for_complete(c);
		r = rbd_aio_get_return_value(c);
	}
	rbd_aio_release(c);
	return r;
}

struct rbdgw_extent_list {
	uint64_t *offs, *lens;
	int n, max, full;
};

static int rbdgw_extent_cb(uint64_t off, size_t len, int exists, void *arg)
{
	struct rbdgw_extent_list *l = arg;
	if (!exists)
		return 0;
	if (l->n > 0 && l->offs[l->n - 1] + l->lens[l->n - 1] == off) {
		l->lens[l->n - 1] += len;
		return 0;
	}
	if (l->n == l->max) {
		l->full = 1;
		return -ECANCELED; // stops the iteration
	}
	l->offs[l->n] = off;
	l->lens[l->n] = len;
	l->n++;
	return 0;
}

int rbdgw_extents(rbd_image_t image, uint64_t off, uint64_t len,
		  uint64_t *offs, uint64_t *lens, int max, int *n)
{
	struct rbdgw_extent_list l = { offs, lens, 0, max, 0 };
	int r = rbd_diff_iterate2(image, NULL, off, len, 1, 1, rbdgw_extent_cb, &l);
	*n = l.n;
	if (l.full)
		return 1;
	return r < 0 ? r : 0;
}

static void rbdgw_updated(void *arg)
{
	rbdgwUpdated((uintptr_t)arg);
}

int rbdgw_update_watch(rbd_image_t image, uint64_t *handle, uintptr_t tag)
{
	return rbd_update_watch(image, handle, rbdgw_updated, (void *)tag);
}
