package api

import (
	"github.com/rbdgw/rbdgw/gateway/audit"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// authenticate admits a request whose bearer token has at least the
// route's role. There is no default credential: the first admin token is
// made at bootstrap (written to a 0600 file) or with rbdgw-admin.
func (s *Server) authenticate(r route) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r.role == 0 {
			return
		}
		h := c.GetHeader("Authorization")
		scheme, token, found := strings.Cut(h, " ")
		if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			c.Header("WWW-Authenticate", `Bearer realm="rbdgw"`)
			s.fail(c, newError(http.StatusUnauthorized, model.CodeUnauthenticated,
				"this request needs a token: send \"Authorization: Bearer <token>\" (rbdgw-admin token create)"))
			return
		}
		ctx, cancel := s.ctx(c)
		p, err := s.opts.Tokens.Verify(ctx, strings.TrimSpace(token))
		cancel()
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="rbdgw", error="invalid_token"`)
			s.fail(c, err)
			return
		}
		c.Set(ctxPrincipal, p)
		if p.Role < r.role {
			s.fail(c, newError(http.StatusForbidden, model.CodeForbidden,
				"token %q has role %s; %s %s needs %s", p.Name, p.Role, r.method, c.Request.URL.Path, r.role))
			return
		}
	}
}

func principal(c *gin.Context) Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(Principal)
	return pr
}

// audit records every write, whatever its outcome, once it has run.
func (s *Server) audit(c *gin.Context) {
	c.Next()
	if s.opts.Audit == nil {
		return
	}
	p := principal(c)
	e := model.AuditEntry{
		Time:      time.Now().UTC(),
		TokenID:   p.TokenID,
		TokenName: p.Name,
		Role:      p.Role.String(),
		Remote:    c.ClientIP(),
		Method:    c.Request.Method,
		Path:      c.Request.URL.RequestURI(),
		Status:    c.Writer.Status(),
	}
	if b, ok := c.Get(ctxBody); ok {
		e.Body = string(audit.MaskSecrets(b.([]byte)))
	}
	if rev, ok := c.Get(ctxRevision); ok {
		e.Revision = rev.(int64)
	}
	if code, ok := c.Get(ctxErrorCode); ok {
		e.Code = code.(string)
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.opts.Audit.Record(ctx, e); err != nil {
		s.log.Warn("cannot record the audit entry", "method", e.Method, "path", e.Path, "err", err)
	}
}
