package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// Error is an error with its HTTP status and machine code. Handlers return
// it for problems of the request itself; everything else is mapped by
// classify, the one place where store, Ceph and token errors become HTTP.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string { return e.Message }

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, model.CodeInvalid, format, args...)
}

func notFoundf(format string, args ...any) *Error {
	return newError(http.StatusNotFound, model.CodeNotFound, format, args...)
}

// classify maps any error to its HTTP status and body.
func classify(err error) (int, model.ErrorBody) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, model.ErrorBody{Code: e.Code, Message: e.Message, Details: e.Details}
	}
	body := func(code string) model.ErrorBody { return model.ErrorBody{Code: code, Message: err.Error()} }
	var conflict *cluster.ConflictError
	switch {
	case errors.Is(err, cluster.ErrInvalid):
		return http.StatusBadRequest, body(model.CodeInvalid)
	case errors.Is(err, cluster.ErrTooLarge):
		return http.StatusBadRequest, body(model.CodeChangeTooLarge)
	case errors.Is(err, cluster.ErrNotFound):
		return http.StatusNotFound, body(model.CodeNotFound)
	case errors.Is(err, cluster.ErrExists):
		return http.StatusConflict, body(model.CodeExists)
	case errors.Is(err, cluster.ErrInUse):
		return http.StatusConflict, body(model.CodeInUse)
	case errors.As(err, &conflict):
		b := body(model.CodeConflict)
		b.Details = map[string]any{"revision": conflict.Rev}
		return http.StatusConflict, b
	case errors.Is(err, cluster.ErrSchema):
		return http.StatusServiceUnavailable, body(model.CodeSchema)
	case errors.Is(err, ErrCephNotFound):
		return http.StatusNotFound, body(model.CodeNotFound)
	case errors.Is(err, ErrCephExists):
		return http.StatusConflict, body(model.CodeExists)
	case errors.Is(err, ErrCephBusy):
		return http.StatusConflict, body(model.CodeInUse)
	case errors.Is(err, ErrCephInvalid), errors.Is(err, ErrCephShrink):
		return http.StatusBadRequest, body(model.CodeInvalid)
	case errors.Is(err, ErrCephFailed):
		return http.StatusBadGateway, body(model.CodeCeph)
	case errors.Is(err, ErrBadToken):
		return http.StatusUnauthorized, body(model.CodeUnauthenticated)
	case errors.Is(err, ErrTokenNotFound):
		return http.StatusNotFound, body(model.CodeNotFound)
	case unavailable(err):
		return http.StatusServiceUnavailable, model.ErrorBody{Code: model.CodeUnavailable,
			Message: "the cluster store (etcd) did not answer: " + err.Error()}
	}
	return http.StatusInternalServerError, body(model.CodeInternal)
}

// unavailable reports errors that mean etcd could not be reached in time.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok {
			switch s.Code() {
			case codes.Unavailable, codes.DeadlineExceeded:
				return true
			}
		}
	}
	return false
}
