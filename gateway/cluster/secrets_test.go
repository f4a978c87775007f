package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

func testKey(t *testing.T, fill byte) *SecretKey {
	t.Helper()
	k, err := NewSecretKey(bytes.Repeat([]byte{fill}, SecretKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// commitLocal runs ops through the plan and its transaction, as Commit
// does with a store that has key (nil: plain), and applies the stored
// values to a copy of base read with readKey. It returns the new snapshot
// and the raw values written.
func commitLocal(t *testing.T, base *Snapshot, key, readKey *SecretKey, ops ...Op) (*Snapshot, map[Key]string, error) {
	t.Helper()
	p, err := buildPlan(base, ops)
	if err != nil {
		return nil, nil, err
	}
	p.secrets = key
	_, txnOps, err := p.txn(DefaultPrefix, DefaultMaxTxnOps)
	if err != nil {
		return nil, nil, err
	}
	next := base.clone()
	next.secrets = readKey
	next.Rev = base.Rev + 1
	raw := map[Key]string{}
	for _, op := range txnOps {
		k := Key(strings.TrimPrefix(string(op.KeyBytes()), DefaultPrefix))
		if op.IsDelete() {
			next.deleteKV(k)
			continue
		}
		raw[k] = string(op.ValueBytes())
		next.applyKV(k, op.ValueBytes(), next.Rev)
	}
	return next, raw, nil
}

var (
	hostCHAP   = config.CHAP{User: "host1", Secret: "host1secret12", MutualUser: "tgt1", MutualSecret: "tgt1secret123"}
	targetCHAP = config.CHAP{User: "tgt", Secret: "targetsecret1"}
	discoCHAP  = config.CHAP{User: "disco", Secret: "discosecret12"}
)

func chapOps() []Op {
	t := fixtureTarget()
	t.CHAP = &targetCHAP
	return []Op{
		PutTarget(t),
		PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP}),
		PutDiscoveryAuth(discoCHAP),
	}
}

func fixtureTarget() Target {
	return Target{IQN: tIQN, Gateways: []string{"gw1", "gw2"}}
}

func TestSecretsRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	base := fixture(t)
	base.secrets = key
	snap, raw, err := commitLocal(t, base, key, key, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Damaged) != 0 {
		t.Fatalf("damaged: %v", snap.Damaged)
	}
	if got := *snap.Hosts[tIQN][ini1].CHAP; got != hostCHAP {
		t.Fatalf("host CHAP %+v", got)
	}
	if got := *snap.Targets[tIQN].CHAP; got != targetCHAP {
		t.Fatalf("target CHAP %+v", got)
	}
	if got := *snap.DiscoveryAuth; got != discoCHAP {
		t.Fatalf("discovery CHAP %+v", got)
	}
	// Stored: users in clear, secrets encrypted with the key's id, never
	// the secret itself; two encryptions of one secret differ (nonce).
	for k, v := range raw {
		for _, s := range []string{hostCHAP.Secret, hostCHAP.MutualSecret, targetCHAP.Secret, discoCHAP.Secret} {
			if strings.Contains(v, s) {
				t.Fatalf("%s stored a secret in plain text: %s", k, v)
			}
		}
	}
	var stored Host
	if err := json.Unmarshal([]byte(raw[HostKey(tIQN, ini1)]), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.CHAP.User != "host1" || stored.CHAP.MutualUser != "tgt1" ||
		!strings.HasPrefix(stored.CHAP.Secret, "enc:v1:"+key.ID()+":") || !strings.HasPrefix(stored.CHAP.MutualSecret, "enc:v1:") {
		t.Fatalf("stored host %+v", stored.CHAP)
	}
	_, raw2, err := commitLocal(t, base, key, key, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	if raw2[HostKey(tIQN, ini1)] == raw[HostKey(tIQN, ini1)] {
		t.Fatal("two encryptions of the same record are identical")
	}
	if plain, sealed := snap.SecretStorage(); plain != 0 || sealed[key.ID()] != 3 {
		t.Fatalf("storage: %d plain, %v sealed", plain, sealed)
	}
	// A preview (dry run) shows what the ops put, not ciphertext.
	changes, err := Preview(base, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if h, ok := c.Value.(Host); ok && *h.CHAP != hostCHAP {
			t.Fatalf("preview %+v", h.CHAP)
		}
	}
}

// Plain and encrypted records coexist: a cluster that had plain secrets
// keeps working when a key is introduced, and each rewrite encrypts.
func TestSecretsMixedPlainAndEncrypted(t *testing.T) {
	key := testKey(t, 2)
	plainSnap, raw, err := commitLocal(t, fixture(t), nil, nil, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw[HostKey(tIQN, ini1)], hostCHAP.Secret) {
		t.Fatalf("without a key the secret is stored as it is: %s", raw[HostKey(tIQN, ini1)])
	}
	// A gateway with the key reads the plain records.
	withKey := reread(t, plainSnap, key, raw)
	if len(withKey.Damaged) != 0 || *withKey.Hosts[tIQN][ini1].CHAP != hostCHAP {
		t.Fatalf("plain records read with a key: %v %+v", withKey.Damaged, withKey.Hosts[tIQN][ini1].CHAP)
	}
	// Rewriting one record with the key encrypts it; the others stay plain.
	mixed, raw2, err := commitLocal(t, withKey, key, key, PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP}))
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(storedSecret(t, raw2[HostKey(tIQN, ini1)])) {
		t.Fatal("rewritten host not encrypted")
	}
	if *mixed.Hosts[tIQN][ini1].CHAP != hostCHAP || *mixed.Targets[tIQN].CHAP != targetCHAP || *mixed.DiscoveryAuth != discoCHAP {
		t.Fatal("mixed snapshot lost a secret")
	}
	if plain, sealed := mixed.SecretStorage(); plain != 2 || sealed[key.ID()] != 1 {
		t.Fatalf("storage: %d plain, %v sealed", plain, sealed)
	}
	// A writer without the key may not add plain secrets to a cluster
	// that holds encrypted ones...
	_, _, err = commitLocal(t, mixed, nil, nil, PutDiscoveryAuth(discoCHAP))
	if !errors.Is(err, ErrSecretKey) || !strings.Contains(err.Error(), "-secret-key-file") {
		t.Fatalf("plain write into an encrypted cluster: %v", err)
	}
	// ...but may change records without secrets.
	if _, _, err := commitLocal(t, mixed, nil, nil, PutHost(Host{Target: tIQN, Initiator: "iqn.2024-01.io.x:h9"})); err != nil {
		t.Fatalf("write without secrets: %v", err)
	}
	// WritePlainSecrets turns encryption off record by record.
	p, err := buildPlan(mixed, []Op{PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP})})
	if err != nil {
		t.Fatal(err)
	}
	p.plainOK = true
	if _, ops, err := p.txn(DefaultPrefix, DefaultMaxTxnOps); err != nil || !strings.Contains(string(ops[0].ValueBytes()), hostCHAP.Secret) {
		t.Fatalf("plain write allowed: %v", err)
	}
}

// A value that does not decrypt (damaged, another key, no key, moved to
// another record) leaves its record damaged, with a reason that names the
// key and never the secret, and the rest of the snapshot intact. The
// record stays, failing closed: its secrets are valid CHAP secrets nobody
// knows, which no write accepts back.
func TestSecretsUndecryptable(t *testing.T) {
	key, other := testKey(t, 3), testKey(t, 4)
	snap, raw, err := commitLocal(t, fixture(t), key, key, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	hk := HostKey(tIQN, ini1)
	flip := func(v string) string {
		i := strings.Index(v, `"secret":"enc:v1:`) + len(`"secret":"enc:v1:`) + keyIDLen + 10
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	var tgt Target
	if err := json.Unmarshal([]byte(raw[TargetKey(tIQN)]), &tgt); err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(raw[hk], storedSecret(t, raw[hk]), tgt.CHAP.Secret, 1)
	truncated := strings.Replace(raw[hk], storedSecret(t, raw[hk]), "enc:v1:"+key.ID()+":AAAA", 1)
	future := strings.Replace(raw[hk], storedSecret(t, raw[hk]), "enc:v9:whatever", 1)
	tests := []struct {
		name   string
		key    *SecretKey
		value  string
		reason string
	}{
		{"damaged ciphertext", key, flip(raw[hk]), "damaged encrypted value or wrong key"},
		{"truncated", key, truncated, "damaged encrypted value"},
		{"ciphertext of another record", key, moved, "damaged encrypted value or wrong key"},
		{"another key", other, raw[hk], "encrypted with key " + key.ID() + ", the key file holds " + other.ID()},
		{"no key", nil, raw[hk], "no secret key file is configured"},
		{"unknown version", key, future, "format this build does not read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := snap.clone()
			s.secrets = tc.key
			s.applyKV(hk, []byte(tc.value), 99)
			reason, bad := s.Damaged[hk]
			if !bad || !strings.Contains(reason, tc.reason) {
				t.Fatalf("damaged %v, reason %q, want %q", bad, reason, tc.reason)
			}
			if strings.Contains(reason, hostCHAP.Secret) {
				t.Fatalf("reason shows the secret: %s", reason)
			}
			h, ok := s.Hosts[tIQN][ini1]
			if !ok || h.CHAP == nil || h.CHAP.User != hostCHAP.User {
				t.Fatalf("undecryptable host left out: %+v", h)
			}
			c := *h.CHAP
			if c.Secret == hostCHAP.Secret || c.MutualSecret == hostCHAP.MutualSecret || !IsSealed(c.Secret) || c.Validate() != nil {
				t.Fatalf("placeholder secrets %+v: want valid, unknown, marked", c)
			}
			again := s.clone()
			again.applyKV(hk, []byte(tc.value), 100)
			if again.Hosts[tIQN][ini1].CHAP.Secret == c.Secret {
				t.Fatal("placeholder secret is predictable")
			}
			// A read-modify-write cannot store the placeholder, nor can a
			// plan that rewrites the record without an op replacing it.
			h.LUNs = []uint64{0}
			if _, _, err := commitLocal(t, s, key, key, PutHost(h)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("rewriting the placeholder: %v", err)
			}
			p, err := buildPlan(s, []Op{PutDisk(Disk{Pool: "rbd", Image: "z", Size: 1 << 20})})
			if err != nil {
				t.Fatal(err)
			}
			p.secrets, p.writes[hk] = key, true
			if _, _, err := p.txn(DefaultPrefix, DefaultMaxTxnOps); !errors.Is(err, ErrSecretKey) {
				t.Fatalf("plan rewriting an undecryptable record: %v", err)
			}
			if _, ok := s.Targets[tIQN]; !ok {
				t.Fatal("the other records must stay")
			}
			if _, sealed := s.SecretStorage(); tc.name != "unknown version" && sealed[key.ID()] != 3 {
				t.Fatalf("sealed count %v", sealed)
			}
			// Rewriting the record with the key repairs it.
			fixed, _, err := commitLocal(t, s, key, key, PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP}))
			if err != nil {
				t.Fatal(err)
			}
			if _, bad := fixed.Damaged[hk]; bad || *fixed.Hosts[tIQN][ini1].CHAP != hostCHAP {
				t.Fatalf("not repaired: %v", fixed.Damaged)
			}
		})
	}
}

// A key file with two keys (the new one first) reads values of both and
// writes with the first: how a cluster changes keys.
func TestSecretKeyRing(t *testing.T) {
	oldKey := testKey(t, 5)
	_, raw, err := commitLocal(t, fixture(t), oldKey, oldKey, chapOps()...)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewSecretKey(append(bytes.Repeat([]byte{6}, SecretKeySize), bytes.Repeat([]byte{5}, SecretKeySize)...))
	if err != nil {
		t.Fatal(err)
	}
	if ring.ID() == oldKey.ID() || ring.IDs()[1] != oldKey.ID() {
		t.Fatalf("ring ids %v, old %s", ring.IDs(), oldKey.ID())
	}
	snap := reread(t, fixture(t), ring, raw)
	if len(snap.Damaged) != 0 || *snap.Hosts[tIQN][ini1].CHAP != hostCHAP {
		t.Fatalf("ring did not read the old key's values: %v", snap.Damaged)
	}
	_, raw2, err := commitLocal(t, snap, ring, ring, PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP}))
	if err != nil {
		t.Fatal(err)
	}
	if s := storedSecret(t, raw2[HostKey(tIQN, ini1)]); !strings.HasPrefix(s, "enc:v1:"+ring.ID()+":") {
		t.Fatalf("written with %s, want the first key %s", s[:24], ring.ID())
	}
	if _, err := NewSecretKey(append(bytes.Repeat([]byte{5}, SecretKeySize), bytes.Repeat([]byte{5}, SecretKeySize)...)); err == nil {
		t.Fatal("a key given twice accepted")
	}
	for _, n := range []int{0, 16, 33, 63} {
		if _, err := NewSecretKey(make([]byte, n)); err == nil {
			t.Fatalf("%d-byte key accepted", n)
		}
	}
}

func TestSecretKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	k, err := CreateSecretKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != SecretKeySize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v", fi, err)
	}
	loaded, err := LoadSecretKey(path)
	if err != nil || loaded.ID() != k.ID() || len(k.ID()) != keyIDLen {
		t.Fatalf("loaded %v, %v", loaded, err)
	}
	if _, err := CreateSecretKeyFile(path); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecretKey(short); err == nil || !strings.Contains(err.Error(), short) {
		t.Fatalf("short key file: %v", err)
	}
}

// A secret that looks like an encrypted value is refused: it would be
// read back as one.
func TestSecretWithSealedPrefixRefused(t *testing.T) {
	c := config.CHAP{User: "disco", Secret: "enc:v1:abcdefg"}
	if _, err := applyLocal(fixture(t), PutDiscoveryAuth(c)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("secret with the encrypted prefix: %v", err)
	}
}

// reread decodes raw values into a copy of base with key.
func reread(t *testing.T, base *Snapshot, key *SecretKey, raw map[Key]string) *Snapshot {
	t.Helper()
	s := base.clone()
	s.secrets = key
	for k, v := range raw {
		s.applyKV(k, []byte(v), s.Rev+1)
	}
	return s
}

// storedSecret returns the secret field of a stored record with CHAP.
func storedSecret(t *testing.T, value string) string {
	t.Helper()
	var v struct {
		Secret string `json:"secret"`
		CHAP   *struct {
			Secret string `json:"secret"`
		} `json:"chap"`
	}
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		t.Fatal(err)
	}
	if v.CHAP != nil {
		return v.CHAP.Secret
	}
	return v.Secret
}
