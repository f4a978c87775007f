package cluster

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the store returns wraps one of them, so the
// REST API maps errors to HTTP statuses in one place with errors.Is.
var (
	// ErrInvalid: a value or reference failed validation (HTTP 400).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: the entity (or its parent) does not exist (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrExists: a create-only write found the entity already there (HTTP 409).
	ErrExists = errors.New("already exists")
	// ErrInUse: the entity is still referenced and cannot be deleted or
	// changed that way (HTTP 409).
	ErrInUse = errors.New("in use")
	// ErrConflict: someone else changed the data between read and write
	// (HTTP 409). Returned as *ConflictError.
	ErrConflict = errors.New("concurrent change")
	// ErrTooLarge: one change touches more keys than etcd accepts in a
	// single transaction.
	ErrTooLarge = errors.New("change too large")
	// ErrSchema: the cluster was written by a newer schema version.
	ErrSchema = errors.New("unsupported schema version")
)

// ConflictError reports a lost optimistic-concurrency race. Nothing was
// written.
type ConflictError struct {
	// Key is the entity whose caller-supplied expectation (IfModRev, an
	// expected epoch or PR revision) no longer holds; empty when the
	// transaction's revision compares failed.
	Key Key
	// Rev is the cluster revision at which the conflict was seen.
	Rev int64
	// txn marks a failed transaction compare: the caller's intent may still
	// apply to the newer state, so Update retries it.
	txn bool
}

func (e *ConflictError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("cluster: %s changed concurrently (now at revision %d)", e.Key, e.Rev)
	}
	return fmt.Sprintf("cluster: configuration changed concurrently (now at revision %d)", e.Rev)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// invalidf builds an ErrInvalid error. The message must never carry a
// secret: callers name the field, not its value.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, args...)...)
}

func inUsef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInUse}, args...)...)
}
