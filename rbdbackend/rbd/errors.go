//go:build pacific

package rbd

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Errors of the image lifecycle and cluster operations. Data-path errors
// use the rbdbackend sentinels. Every error this package returns for a
// failed librbd/rados call is an *OpError, so errors.Is also matches the
// underlying syscall.Errno.
var (
	ErrNotFound = errors.New("rbd: image, snapshot or pool not found")
	ErrExists   = errors.New("rbd: image or snapshot already exists")
	// ErrBusy: the image is open elsewhere (watchers), or another client
	// holds its exclusive lock and refuses the operation.
	ErrBusy = errors.New("rbd: image is in use")
	// ErrHasSnapshots: an image with snapshots cannot be removed.
	ErrHasSnapshots = errors.New("rbd: image has snapshots")
	// ErrShrink: images only grow; it also matches rbdbackend.ErrUnsupported.
	ErrShrink = fmt.Errorf("rbd: shrinking an image is refused: %w", rbdbackend.ErrUnsupported)
	// ErrInvalid: librbd rejected an argument (feature set, size, name).
	ErrInvalid = errors.New("rbd: invalid argument")
)

// EBLOCKLISTED is what librados returns to a blocklisted client; Ceph
// defines it as ESHUTDOWN.
const errBlocklisted = syscall.ESHUTDOWN

// OpError is a failed librbd or rados call.
type OpError struct {
	Op    string        // what was attempted, e.g. "write", "lock acquire"
	Image string        // "pool/name", or "" for cluster operations
	Errno syscall.Errno // the positive errno librbd returned
	Kind  error         // the sentinel it maps to, or nil
}

func (e *OpError) Error() string {
	what := e.Op
	if e.Image != "" {
		what += " " + e.Image
	}
	if e.Kind != nil {
		return fmt.Sprintf("rbd: %s: %v (%v)", what, e.Kind, e.Errno)
	}
	return fmt.Sprintf("rbd: %s: %v", what, e.Errno)
}

// Unwrap exposes both the sentinel and the errno to errors.Is.
func (e *OpError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Errno}
	}
	return []error{e.Kind, e.Errno}
}

// errContext says which meaning an ambiguous errno has.
type errContext int

const (
	// ctxIO: the data path (images are always opened writable). EROFS
	// there means another client holds the exclusive lock.
	ctxIO errContext = iota
	// ctxAdmin: lifecycle and lock operations. EROFS there means the lock
	// owner refused to run the operation for us.
	ctxAdmin
)

// opError maps a negative librbd/rados return code to an error. It is the
// one place where errnos get their meaning; ret >= 0 gives nil.
func opError(op, image string, ret int, ctx errContext) error {
	if ret >= 0 {
		return nil
	}
	errno := syscall.Errno(-ret)
	return &OpError{Op: op, Image: image, Errno: errno, Kind: errnoKind(errno, ctx)}
}

func errnoKind(errno syscall.Errno, ctx errContext) error {
	switch errno {
	case syscall.ETIMEDOUT:
		return rbdbackend.ErrTimeout
	case errBlocklisted:
		return rbdbackend.ErrLockLost
	case syscall.EROFS:
		if ctx == ctxAdmin {
			return ErrBusy
		}
		return rbdbackend.ErrLockLost
	case syscall.EILSEQ:
		return rbdbackend.ErrMiscompare
	case syscall.EOPNOTSUPP, syscall.ENOSYS:
		return rbdbackend.ErrUnsupported
	case syscall.ENOENT:
		return ErrNotFound
	case syscall.EEXIST:
		return ErrExists
	case syscall.EBUSY:
		return ErrBusy
	case syscall.ENOTEMPTY:
		return ErrHasSnapshots
	case syscall.EINVAL, syscall.ERANGE:
		return ErrInvalid
	}
	return nil
}

// errorCoder is implemented by go-ceph's errors.
type errorCoder interface{ ErrorCode() int }

// cephError maps an error from go-ceph through opError; errors without
// an errno pass through wrapped.
func cephError(op, image string, err error, ctx errContext) error {
	if err == nil {
		return nil
	}
	var ec errorCoder
	if errors.As(err, &ec) && ec.ErrorCode() != 0 {
		// go-ceph returns most codes negative, a few positive.
		code := ec.ErrorCode()
		if code > 0 {
			code = -code
		}
		return opError(op, image, code, ctx)
	}
	if image != "" {
		op += " " + image
	}
	return fmt.Errorf("rbd: %s: %w", op, err)
}

// fencing reports whether ret says this rados client was blocklisted.
func fencing(ret int) bool { return ret == -int(errBlocklisted) }
