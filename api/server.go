// Package api is the REST API of the gateway cluster (/api/v1): routing,
// request and response documents (package model), validation messages,
// bearer-token auth with roles, the audit trail, and the one place that
// maps store and Ceph errors to HTTP (errors.go). Every gateway daemon
// serves it; any gateway accepts any change and etcd transactions decide
// between concurrent writers.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// Options wire a Server.
type Options struct {
	Store    Store
	Ceph     Ceph // nil: this gateway has no Ceph client (disk writes refused)
	Gateways Gateways
	Tokens   Tokens
	Audit    Audit
	// Stats and Events serve the statistics and the event stream; nil:
	// those routes answer 503.
	Stats  Stats
	Events Events
	// Gateway is the name of the gateway serving this API; Version its
	// build.
	Gateway string
	Version string
	Logger  *slog.Logger
	// StoreTimeout bounds each request's etcd and Ceph calls (10 s).
	StoreTimeout time.Duration
	// Metrics, when set, is served at GET /metrics (outside /api/v1 and
	// without a token, as Prometheus scrapes).
	Metrics http.Handler
}

// Server serves the API.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *gin.Engine
	routes []route
	// commitSem admits one write at a time to the store (write.go).
	commitSem chan struct{}
}

// Context keys.
const (
	ctxPrincipal = "rbdgw.principal"
	ctxBody      = "rbdgw.body"
	ctxRevision  = "rbdgw.revision"
	ctxErrorCode = "rbdgw.error"
)

// APIPrefix is where every route lives.
const APIPrefix = "/api/v1"

// New builds the server and its routes.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 10 * time.Second
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{opts: opts, log: opts.Logger.With("component", "api"), commitSem: make(chan struct{}, 1)}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(s.recoverPanics)
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, notFoundf("no API route %s %s; see %s/openapi.json", c.Request.Method, c.Request.URL.Path, APIPrefix))
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, newError(http.StatusMethodNotAllowed, model.CodeMethodNotAllowed,
			"%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.routes = s.table()
	for _, r := range s.routes {
		handlers := []gin.HandlerFunc{s.authenticate(r)}
		if r.writes() {
			handlers = append(handlers, s.audit)
		}
		handlers = append(handlers, r.handler)
		e.Handle(r.method, APIPrefix+r.path, handlers...)
	}
	if opts.Metrics != nil {
		e.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	s.engine = e
	return s
}

// Handler is the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.engine }

// ctx is the request's context bounded by StoreTimeout.
func (s *Server) ctx(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.opts.StoreTimeout)
}

// fail writes err as the JSON error body with its status.
func (s *Server) fail(c *gin.Context, err error) {
	status, body := classify(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
	}
	c.Set(ctxErrorCode, body.Code)
	c.Header("Cache-Control", "no-store")
	c.Abort()
	// Not HTML-escaped: messages quote IQNs and hints like "Bearer <token>"
	// that people read with curl.
	c.PureJSON(status, model.Error{Error: body})
}

// ok writes v with status.
func (s *Server) ok(c *gin.Context, status int, v any) {
	c.Header("Cache-Control", "no-store")
	c.PureJSON(status, v)
}

func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", p)
			s.fail(c, newError(http.StatusInternalServerError, model.CodeInternal, "internal error while serving %s %s", c.Request.Method, c.Request.URL.Path))
		}
	}()
	c.Next()
}
