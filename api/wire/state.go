package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/node"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

// Tokens is api.Tokens over the tokens kept in etcd.
type Tokens struct{ S *tokens.Store }

var _ api.Tokens = Tokens{}

// roles maps the stored role names onto the API's.
var roles = map[tokens.Role]api.Role{
	tokens.RoleViewer:   api.RoleViewer,
	tokens.RoleOperator: api.RoleOperator,
	tokens.RoleAdmin:    api.RoleAdmin,
}

func tokenOut(i tokens.Info) model.Token {
	return model.Token{ID: i.ID, Name: i.Name, Role: string(i.Role), Created: i.Created, Expires: i.Expires}
}

func (t Tokens) Verify(ctx context.Context, tok string) (api.Principal, error) {
	info, err := t.S.Verify(ctx, tok)
	switch {
	case errors.Is(err, tokens.ErrInvalidToken):
		return api.Principal{}, api.ErrBadToken // the same words: say them once
	case errors.Is(err, tokens.ErrExpired):
		return api.Principal{}, fmt.Errorf("%w: %v", api.ErrBadToken, err)
	case err != nil:
		return api.Principal{}, err
	}
	return api.Principal{TokenID: info.ID, Name: info.Name, Role: roles[info.Role]}, nil
}

func (t Tokens) Create(ctx context.Context, name string, role api.Role, ttl time.Duration) (string, model.Token, error) {
	tok, info, err := t.S.Create(ctx, name, tokens.Role(role.String()), ttl)
	if errors.Is(err, tokens.ErrInvalid) {
		return "", model.Token{}, &api.Error{Status: 400, Code: model.CodeInvalid, Message: err.Error()}
	}
	if err != nil {
		return "", model.Token{}, err
	}
	return tok, tokenOut(info), nil
}

func (t Tokens) List(ctx context.Context) ([]model.Token, error) {
	list, err := t.S.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]model.Token, 0, len(list))
	for _, i := range list {
		out = append(out, tokenOut(i))
	}
	return out, nil
}

func (t Tokens) Revoke(ctx context.Context, id string) error {
	err := t.S.Revoke(ctx, id)
	if errors.Is(err, tokens.ErrNotFound) {
		return fmt.Errorf("%w: %s", api.ErrTokenNotFound, id)
	}
	return err
}

// Audit is api.Audit over the audit log in etcd.
type Audit struct{ L *audit.Log }

var _ api.Audit = Audit{}

func (a Audit) Record(ctx context.Context, e model.AuditEntry) error {
	return a.L.Record(ctx, audit.Entry(e))
}

func (a Audit) List(ctx context.Context, limit int, before string) ([]model.AuditEntry, string, error) {
	entries, next, err := a.L.List(ctx, limit, before)
	if errors.Is(err, audit.ErrBadCursor) {
		return nil, "", &api.Error{Status: 400, Code: model.CodeInvalid, Message: "before: " + err.Error()}
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]model.AuditEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, model.AuditEntry(e))
	}
	return out, next, nil
}

// Gateways is api.Gateways over what the gateways publish in etcd.
type Gateways struct {
	Cli    *clientv3.Client
	Prefix string
}

var _ api.Gateways = Gateways{}

func (g Gateways) Status(ctx context.Context) ([]api.GatewayStatus, error) {
	st, _, err := node.ReadCluster(ctx, g.Cli, g.Prefix)
	if err != nil {
		return nil, err
	}
	out := make([]api.GatewayStatus, 0, len(st))
	for _, s := range st {
		gs := api.GatewayStatus{Name: s.Name, Live: s.Live}
		if p := s.Published; p != nil {
			gs.Version, gs.Started, gs.APIURL = p.Version, p.Started, p.APIURL
			gs.AppliedRevision, gs.AppliedComplete = p.Applied.Revision, p.Applied.Complete
			for _, ss := range p.Sessions {
				gs.Sessions = append(gs.Sessions, model.Session(ss))
			}
		}
		out = append(out, gs)
	}
	return out, nil
}

func (g Gateways) WaitApplied(ctx context.Context, rev int64, names []string) ([]string, []string, error) {
	return node.WaitApplied(ctx, g.Cli, g.Prefix, rev, names)
}
