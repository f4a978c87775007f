package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// CHAP secrets at rest (docs/adr/0004-chap-secrets-at-rest.md).
//
// With a SecretKey in Options, the store encrypts the secret fields of
// every CHAP record it writes (a target's, a host's, discovery CHAP) with
// AES-256-GCM and decrypts them when it reads. A stored secret is either
// plain text or
//
//	enc:v1:<key id>:<base64 of nonce, ciphertext and tag>
//
// so plain and encrypted values coexist and a cluster migrates by
// rewriting its records. The key id (the first 8 bytes of the key's
// SHA-256, in hex) names the key without revealing it; the additional data
// is the record's key and the field, so a ciphertext copied to another
// record or field does not decrypt. A value that does not decrypt puts its
// record in Snapshot.Damaged, like any undecodable value, but the record
// stays in the snapshot with secrets nobody knows (unreadableSecret).

// SecretKeySize is the size of one key: AES-256.
const SecretKeySize = 32

const (
	// sealedPrefix marks an encrypted value; the version after it says how.
	sealedPrefix = "enc:"
	sealedV1     = "enc:v1:"
	keyIDLen     = 16 // hex digits
)

// ErrSecretKey reports a stored secret this process cannot decrypt: no
// key, another key, or a damaged value.
var ErrSecretKey = errors.New("cluster: CHAP secret cannot be decrypted")

// SecretKey encrypts and decrypts CHAP secrets. It holds one or more keys:
// the first encrypts, every one decrypts (the values they encrypted), so
// that a cluster can change keys without a moment in which a gateway cannot
// read a secret. It is safe for concurrent use.
type SecretKey struct {
	keys []secretKey
}

type secretKey struct {
	id   string
	aead cipher.AEAD
}

// NewSecretKey makes a SecretKey of one or more 32-byte keys, concatenated;
// the first is the one that encrypts.
func NewSecretKey(raw []byte) (*SecretKey, error) {
	if len(raw) == 0 || len(raw)%SecretKeySize != 0 {
		return nil, fmt.Errorf("cluster: secret key: %d bytes, want %d (or a multiple, the first key first)", len(raw), SecretKeySize)
	}
	k := &SecretKey{}
	seen := map[string]bool{}
	for off := 0; off < len(raw); off += SecretKeySize {
		one := raw[off : off+SecretKeySize]
		block, err := aes.NewCipher(one)
		if err != nil {
			return nil, fmt.Errorf("cluster: secret key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("cluster: secret key: %w", err)
		}
		sum := sha256.Sum256(one)
		id := hex.EncodeToString(sum[:keyIDLen/2])
		if seen[id] {
			return nil, fmt.Errorf("cluster: secret key: key %s given twice", id)
		}
		seen[id] = true
		k.keys = append(k.keys, secretKey{id: id, aead: aead})
	}
	return k, nil
}

// LoadSecretKey reads a key file: 32 random bytes (rbdgw-admin secret-key
// create), or several keys concatenated while keys are being changed.
func LoadSecretKey(path string) (*SecretKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: secret key: %w", err)
	}
	k, err := NewSecretKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// CreateSecretKeyFile writes a new random key to path (mode 0600). It
// refuses to overwrite a file: losing the key loses every secret
// encrypted with it.
func CreateSecretKeyFile(path string) (*SecretKey, error) {
	raw := make([]byte, SecretKeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, fmt.Errorf("cluster: secret key: %w", err)
	}
	k, err := NewSecretKey(raw)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: secret key: %w", err)
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("cluster: secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("cluster: secret key: %w", err)
	}
	return k, nil
}

// ID names the key that encrypts (16 hex digits).
func (k *SecretKey) ID() string { return k.keys[0].id }

// IDs names every key, the one that encrypts first.
func (k *SecretKey) IDs() []string {
	out := make([]string, len(k.keys))
	for i, one := range k.keys {
		out[i] = one.id
	}
	return out
}

// IsSealed reports whether a stored secret is encrypted (any version).
func IsSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// sealedKeyID returns the id of the key a stored value was encrypted
// with, "" when it is not a version this build reads.
func sealedKeyID(v string) string {
	rest, ok := strings.CutPrefix(v, sealedV1)
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return id
}

// seal encrypts plain for the field of the record at k.
func (k *SecretKey) seal(plain string, aad string) (string, error) {
	one := k.keys[0]
	nonce := make([]byte, one.aead.NonceSize(), one.aead.NonceSize()+len(plain)+one.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", fmt.Errorf("cluster: encrypt secret: %w", err)
	}
	sealed := one.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return sealedV1 + one.id + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// open decrypts a stored value; plain values come back unchanged. The
// errors never contain the value.
func (k *SecretKey) open(v string, aad string) (string, error) {
	if !IsSealed(v) {
		return v, nil
	}
	rest, ok := strings.CutPrefix(v, sealedV1)
	if !ok {
		return "", fmt.Errorf("%w: encrypted in a format this build does not read", ErrSecretKey)
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%w: malformed encrypted value", ErrSecretKey)
	}
	if k == nil {
		return "", fmt.Errorf("%w: encrypted with key %s and no secret key file is configured (-secret-key-file)", ErrSecretKey, id)
	}
	var one *secretKey
	for i := range k.keys {
		if k.keys[i].id == id {
			one = &k.keys[i]
		}
	}
	if one == nil {
		return "", fmt.Errorf("%w: encrypted with key %s, the key file holds %s", ErrSecretKey, id, strings.Join(k.IDs(), ", "))
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < one.aead.NonceSize()+one.aead.Overhead() {
		return "", fmt.Errorf("%w: damaged encrypted value (key %s)", ErrSecretKey, id)
	}
	ns := one.aead.NonceSize()
	plain, err := one.aead.Open(nil, raw[:ns], raw[ns:], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("%w: damaged encrypted value or wrong key (key %s)", ErrSecretKey, id)
	}
	return string(plain), nil
}

// logDamaged reports a key that did not decode.
func logDamaged(log *slog.Logger, k Key, reason string) {
	if strings.Contains(reason, ErrSecretKey.Error()) {
		log.Warn("CHAP secrets of a record cannot be decrypted: its logins are refused until it is rewritten or this process has the key (-secret-key-file)",
			"key", string(k), "reason", reason)
		return
	}
	log.Warn("undecodable key left out of the configuration", "key", string(k), "reason", reason)
}

// chapAAD binds a ciphertext to its record and field.
func chapAAD(k Key, field string) string { return string(k) + "\x00" + field }

// sealCHAP returns a copy of c with its secrets encrypted for record k;
// nil stays nil. With no key it returns c.
func (k *SecretKey) sealCHAP(rec Key, c *config.CHAP) (*config.CHAP, error) {
	if c == nil || k == nil {
		return c, nil
	}
	out := *c
	var err error
	if out.Secret, err = k.seal(c.Secret, chapAAD(rec, "secret")); err != nil {
		return nil, err
	}
	if c.MutualSecret != "" {
		if out.MutualSecret, err = k.seal(c.MutualSecret, chapAAD(rec, "mutual_secret")); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

// openCHAP decrypts c's secrets in place, for record k. It returns the id
// of the key they were encrypted with ("" when plain), also on error. On
// error the secrets are replaced by unguessable placeholders (see
// unreadableSecret), so that the record refuses every CHAP login instead
// of disappearing.
func (k *SecretKey) openCHAP(rec Key, c *config.CHAP) (id string, err error) {
	defer func() {
		if err != nil {
			c.Secret = unreadableSecret()
			if c.MutualUser != "" || c.MutualSecret != "" {
				c.MutualSecret = unreadableSecret()
			}
		}
	}()
	if c == nil {
		return "", nil
	}
	for _, v := range []string{c.Secret, c.MutualSecret} {
		if IsSealed(v) && id == "" {
			if id = sealedKeyID(v); id == "" {
				id = "unknown"
			}
		}
	}
	secret, err := k.open(c.Secret, chapAAD(rec, "secret"))
	if err != nil {
		return id, fmt.Errorf("secret: %w", err)
	}
	mutual, err := k.open(c.MutualSecret, chapAAD(rec, "mutual_secret"))
	if err != nil {
		return id, fmt.Errorf("mutual_secret: %w", err)
	}
	c.Secret, c.MutualSecret = secret, mutual
	return id, nil
}

// unreadableSecret stands in for a secret that cannot be decrypted. A
// record left out of the configuration would fail open in places (a
// target admitting any initiator would take the host for an unknown one
// and see no CHAP; discovery would lose its CHAP), so the record stays
// with this instead: a valid CHAP secret (16 printable characters) that
// nobody knows, 72 random bits, which every login fails. Its "enc:" prefix
// makes ValidateCHAP refuse it, so that a read-modify-write of the record
// can never store it in place of the real secret.
func unreadableSecret() string {
	b := make([]byte, 9)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// sealedValue returns v with the CHAP secrets of the record at rec
// encrypted, for storing. Records without CHAP come back unchanged.
func (k *SecretKey) sealedValue(rec Key, v any) (any, error) {
	if k == nil {
		return v, nil
	}
	var err error
	switch e := v.(type) {
	case Target:
		e.CHAP, err = k.sealCHAP(rec, e.CHAP)
		return e, err
	case Host:
		e.CHAP, err = k.sealCHAP(rec, e.CHAP)
		return e, err
	case *config.CHAP:
		return k.sealCHAP(rec, e)
	case config.CHAP:
		c, err := k.sealCHAP(rec, &e)
		if err != nil {
			return nil, err
		}
		return *c, nil
	}
	return v, nil
}
