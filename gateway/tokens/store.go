package tokens

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultPrefix is the cluster prefix used when New is given none (the
// same as cluster.DefaultPrefix).
const DefaultPrefix = "/rbdgw/"

// Keys relative to the cluster prefix.
const (
	tokensDir = "tokens/"
	// bootstrapKey marks that Bootstrap has made the cluster's first admin
	// token; it is never removed, so bootstrap happens once per cluster.
	bootstrapKey = "tokens-bootstrap"
	// BootstrapName is the name of the token Bootstrap makes.
	BootstrapName = "bootstrap"
)

// record is the stored value of tokens/<id>.
type record struct {
	Info
	SHA256 string `json:"sha256"`
}

// Store manages the tokens of one cluster.
type Store struct {
	cli    *clientv3.Client
	prefix string
	now    func() time.Time
}

// New returns a store of the tokens under prefix (the cluster prefix, e.g.
// "/rbdgw/"; DefaultPrefix when empty). The caller owns cli.
func New(cli *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Store{cli: cli, prefix: prefix, now: time.Now}
}

func (s *Store) key(id string) string { return s.prefix + tokensDir + id }

// newRecord makes a token and its record without storing it.
func (s *Store) newRecord(name string, role Role, ttl time.Duration) (string, record, error) {
	if err := ValidateName(name); err != nil {
		return "", record{}, err
	}
	if !role.Valid() {
		return "", record{}, fmt.Errorf("%w: role %q: expected viewer, operator or admin", ErrInvalid, role)
	}
	if ttl < 0 {
		return "", record{}, fmt.Errorf("%w: negative TTL %v", ErrInvalid, ttl)
	}
	if ttl > 0 && ttl < time.Second {
		return "", record{}, fmt.Errorf("%w: TTL %v is under a second", ErrInvalid, ttl)
	}
	id, secret := generate()
	now := s.now().UTC().Truncate(time.Second)
	r := record{Info: Info{ID: id, Name: name, Role: role, Created: now}, SHA256: hashSecret(secret)}
	if ttl > 0 {
		exp := now.Add(ttl)
		r.Info.Expires = &exp
	}
	return format(id, secret), r, nil
}

// Create makes a token with the given name, role and lifetime (0: it never
// expires) and returns it. The token string is returned this once; only
// the hash of its secret is stored.
func (s *Store) Create(ctx context.Context, name string, role Role, ttl time.Duration) (string, Info, error) {
	for range 3 { // a repeated 60-bit id is all but impossible; retry anyway
		tok, r, err := s.newRecord(name, role, ttl)
		if err != nil {
			return "", Info{}, err
		}
		val, err := json.Marshal(r)
		if err != nil {
			return "", Info{}, err
		}
		k := s.key(r.ID)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(val))).
			Commit()
		if err != nil {
			return "", Info{}, fmt.Errorf("tokens: create: %w", err)
		}
		if resp.Succeeded {
			return tok, r.Info, nil
		}
	}
	return "", Info{}, errors.New("tokens: create: could not draw an unused id")
}

// List returns every token, oldest first. Expired tokens are listed until
// revoked.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	resp, err := s.cli.Get(ctx, s.prefix+tokensDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("tokens: list: %w", err)
	}
	out := make([]Info, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), s.prefix+tokensDir)
		var r record
		if json.Unmarshal(kv.Value, &r) != nil || !ValidID(id) {
			// Unreadable entries are still listed so they can be revoked;
			// Verify never accepts them.
			out = append(out, Info{ID: id, Name: "(undecodable)"})
			continue
		}
		r.Info.ID = id // the key wins
		out = append(out, r.Info)
	}
	slices.SortStableFunc(out, func(a, b Info) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Revoke deletes the token with the given id, or returns ErrNotFound. A
// revoked token fails its next Verify.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	resp, err := s.cli.Delete(ctx, s.key(id))
	if err != nil {
		return fmt.Errorf("tokens: revoke: %w", err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// dummyHash is compared against when a token id is unknown, so that an
// unknown id costs about the same as a wrong secret.
var dummyHash = make([]byte, sha256.Size)

// Verify returns the token's description if token is a token of this
// cluster that has not been revoked. It returns ErrInvalidToken for any
// token it does not accept and ErrExpired for a valid token past its
// expiry; any other error is etcd's (the token could not be checked). Each
// call reads etcd, so a revocation takes effect at once on every gateway.
func (s *Store) Verify(ctx context.Context, token string) (Info, error) {
	id, secret, ok := parse(token)
	if !ok {
		return Info{}, ErrInvalidToken
	}
	resp, err := s.cli.Get(ctx, s.key(id))
	if err != nil {
		return Info{}, fmt.Errorf("tokens: verify: %w", err)
	}
	var r record
	want, found := dummyHash, false
	if len(resp.Kvs) == 1 && json.Unmarshal(resp.Kvs[0].Value, &r) == nil {
		if h, err := hex.DecodeString(r.SHA256); err == nil && len(h) == sha256.Size {
			want, found = h, true
		}
	}
	got := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], want) != 1 || !found || !r.Role.Valid() {
		return Info{}, ErrInvalidToken
	}
	r.Info.ID = id
	if r.Info.Expired(s.now()) {
		return Info{}, ErrExpired
	}
	return r.Info, nil
}

// Bootstrap makes the cluster's first admin token, named "bootstrap", and
// writes it to path (mode 0600; the directory is made 0700 if missing). It
// does so at most once per cluster: when the cluster already has tokens,
// or a bootstrap happened before (even if its token has since been
// revoked), it does nothing and returns false. Gateways starting together
// may all call it; one etcd transaction decides which one makes the token.
func (s *Store) Bootstrap(ctx context.Context, path string) (bool, error) {
	tok, r, err := s.newRecord(BootstrapName, RoleAdmin, 0)
	if err != nil {
		return false, err
	}
	val, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	// The file is written before the token exists in etcd, so that a
	// failure to write it never leaves a token nobody holds.
	tmp, err := writeTemp(path, tok)
	if err != nil {
		return false, fmt.Errorf("tokens: bootstrap: %w", err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	marker, k := s.prefix+bootstrapKey, s.key(r.ID)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(marker), "=", 0),
			// No key in tokens/ (an empty range compares as one absent key).
			clientv3.Compare(clientv3.CreateRevision(s.prefix+tokensDir), "=", 0).WithPrefix()).
		Then(clientv3.OpPut(marker, fmt.Sprintf(`{"id":%q,"created":%q}`, r.ID, r.Created.Format(time.RFC3339))),
			clientv3.OpPut(k, string(val))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("tokens: bootstrap: %w", err)
	}
	if !resp.Succeeded {
		return false, nil
	}
	if err := os.Rename(tmp, path); err != nil {
		// Take the token back so that the next start bootstraps again.
		_, derr := s.cli.Txn(ctx).Then(clientv3.OpDelete(k), clientv3.OpDelete(marker)).Commit()
		return false, errors.Join(fmt.Errorf("tokens: bootstrap: %w", err), derr)
	}
	return true, syncDir(filepath.Dir(path))
}

// WriteFile writes token to path with mode 0600, replacing the file
// atomically (a temporary file in the same directory, then a rename). The
// directory is made with mode 0700 if it does not exist.
func WriteFile(path, token string) error {
	tmp, err := writeTemp(path, token)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes token and a newline to a new 0600 file beside path and
// returns its name.
func writeTemp(path, token string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(token + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
