// Package tokens keeps the REST API's bearer tokens in etcd.
//
// A token reads rbdgw_<id>_<secret>: id is 12 characters of lower-case
// base32hex (0-9, a-v), public, and names the token in lists and
// revocations; secret is 32 random bytes in unpadded base64url. Only the
// SHA-256 of the secret is stored, under <prefix>tokens/<id>, with the
// token's name, role, creation time and optional expiry; the secret itself
// is shown once, when the token is made, and never stored or logged.
//
// Roles nest: an admin may do everything an operator may, an operator
// everything a viewer may. Viewers read, operators also change the
// configuration, admins also manage tokens and read the audit log.
//
// The first admin token of a cluster comes from Bootstrap, which makes it
// exactly once cluster-wide and writes it to a file only root can read; the
// break-glass way to get another is rbdgw-admin token create, which talks
// to etcd directly.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors. Verify returns ErrInvalidToken for every token it does not
// accept (malformed, unknown, revoked, wrong secret) so that a caller
// learns nothing about which part was wrong.
var (
	ErrInvalidToken = errors.New("invalid or revoked token")
	// ErrExpired: the token was valid but its expiry time has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotFound: Revoke found no token with that id.
	ErrNotFound = errors.New("no such token")
	// ErrInvalid: a name, role or TTL given to Create is not acceptable.
	ErrInvalid = errors.New("invalid token request")
)

// Role is what a token may do.
type Role string

// Roles, in increasing power.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Roles lists the roles from least to most powerful.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

func (r Role) level() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.level() > 0 }

// Includes reports whether a token of role r may do whatever a token of
// role other may: admin includes operator includes viewer. An unknown role
// includes nothing and is included by nothing.
func (r Role) Includes(other Role) bool {
	return r.Valid() && other.Valid() && r.level() >= other.level()
}

// ParseRole reads "viewer", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q: expected viewer, operator or admin", ErrInvalid, s)
}

// Info describes a token. It never carries the secret or its hash.
type Info struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Role    Role       `json:"role"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
}

// Expired reports whether the token has an expiry at or before now.
func (i Info) Expired(now time.Time) bool {
	return i.Expires != nil && !now.Before(*i.Expires)
}

// Token string layout.
const (
	tokenPrefix = "rbdgw_"
	idLen       = 12
	secretBytes = 32
	idAlphabet  = "0123456789abcdefghijklmnopqrstuv" // base32hex, lower case
	maxNameLen  = 64
)

var (
	secretEncoding = base64.RawURLEncoding.Strict()
	secretLen      = secretEncoding.EncodedLen(secretBytes)
	tokenLen       = len(tokenPrefix) + idLen + 1 + secretLen
)

// ValidID reports whether id has the form of a token id.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if strings.IndexByte(idAlphabet, id[i]) < 0 {
			return false
		}
	}
	return true
}

// ValidateName checks a token name: 1-64 characters of A-Z a-z 0-9 . _ -.
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: name must be 1 to %d characters", ErrInvalid, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q: only letters, digits, '.', '_' and '-' are allowed", ErrInvalid, name)
		}
	}
	return nil
}

// parse splits a token into its id and the decoded secret. The secret may
// itself contain '_' (base64url), so the layout is read by position.
func parse(token string) (id string, secret []byte, ok bool) {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return "", nil, false
	}
	rest := token[len(tokenPrefix):]
	id, sep, enc := rest[:idLen], rest[idLen], rest[idLen+1:]
	if sep != '_' || !ValidID(id) {
		return "", nil, false
	}
	secret, err := secretEncoding.DecodeString(enc)
	if err != nil || len(secret) != secretBytes {
		return "", nil, false
	}
	return id, secret, true
}

// ParseID returns the id of a well-formed token, e.g. to name it in a log
// line without the secret.
func ParseID(token string) (string, bool) {
	id, _, ok := parse(token)
	return id, ok
}

func format(id string, secret []byte) string {
	return tokenPrefix + id + "_" + secretEncoding.EncodeToString(secret)
}

// generate draws a fresh id and secret from crypto/rand.
func generate() (id string, secret []byte) {
	var b [idLen]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	for i := range b {
		b[i] = idAlphabet[b[i]%32] // 256 is a multiple of 32: no bias
	}
	secret = make([]byte, secretBytes)
	rand.Read(secret)
	return string(b[:]), secret
}

func hashSecret(secret []byte) string {
	h := sha256.Sum256(secret)
	return hex.EncodeToString(h[:])
}
