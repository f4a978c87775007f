package wire

import (
	"context"
	"errors"
	"testing"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

// TestVerifyMessage: a rejected token's 401 says why once, not
// "invalid or revoked token: invalid or revoked token".
func TestVerifyMessage(t *testing.T) {
	_, err := Tokens{S: tokens.New(nil, "")}.Verify(context.Background(), "not-a-token")
	if !errors.Is(err, api.ErrBadToken) || err.Error() != "invalid or revoked token" {
		t.Fatalf("Verify(malformed) = %v, want %q", err, api.ErrBadToken)
	}
}
