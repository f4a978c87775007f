package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

func (s *Server) listTokens(c *gin.Context) {
	ctx, cancel := s.ctx(c)
	defer cancel()
	list, err := s.opts.Tokens.List(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.ok(c, http.StatusOK, nonNil(list))
}

func (s *Server) createToken(c *gin.Context) {
	var in model.TokenCreate
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	role, ok := ParseRole(in.Role)
	if !ok {
		s.fail(c, invalidf("role %q: expected viewer, operator or admin", in.Role))
		return
	}
	if in.TTLSeconds < 0 {
		s.fail(c, invalidf("ttl_seconds must not be negative"))
		return
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	tok, info, err := s.opts.Tokens.Create(ctx, in.Name, role, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.ok(c, http.StatusCreated, model.TokenCreated{Token: tok, Info: info})
}

func (s *Server) revokeToken(c *gin.Context) {
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.opts.Tokens.Revoke(ctx, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.ok(c, http.StatusOK, map[string]any{"revoked": c.Param("id")})
}

// Page sizes of the audit log.
const (
	defaultAuditPage = 100
	maxAuditPage     = 1000
)

func (s *Server) listAudit(c *gin.Context) {
	limit := defaultAuditPage
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			s.fail(c, invalidf("limit=%q: expected an integer from 1 to %d", v, maxAuditPage))
			return
		}
		limit = n
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	entries, next, err := s.opts.Audit.List(ctx, limit, c.Query("before"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.ok(c, http.StatusOK, model.Audit{Entries: nonNil(entries), Next: next})
}
