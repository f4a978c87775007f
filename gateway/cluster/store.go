package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of Options.
const (
	DefaultMaxAttempts = 8
	// DefaultMaxTxnOps matches etcd's --max-txn-ops default.
	DefaultMaxTxnOps = 128
	loadPageSize     = 1000
)

// Options configure a Store.
type Options struct {
	// Prefix of every key; DefaultPrefix when empty. Must start and end
	// with "/".
	Prefix string
	// Logger for warnings (undecodable keys, watch restarts); slog.Default()
	// when nil.
	Logger *slog.Logger
	// MaxAttempts bounds Update's read-modify-write retries.
	MaxAttempts int
	// MaxTxnOps is the etcd server's --max-txn-ops.
	MaxTxnOps int
	// SecretKey, when set, encrypts the CHAP secrets the store writes and
	// decrypts those it reads (secrets.go); without it they are written in
	// plain text, and encrypted ones read as damaged records.
	SecretKey *SecretKey
	// WritePlainSecrets writes CHAP secrets in plain text even with a
	// SecretKey (which then only decrypts), and even into a cluster whose
	// secrets are encrypted: for turning encryption off.
	WritePlainSecrets bool
}

// Store reads and writes the cluster configuration in etcd. It is safe for
// concurrent use. Every writer (daemon, REST API) goes through it so that
// all writes are validated and revision-checked the same way.
type Store struct {
	cli         *clientv3.Client
	prefix      string
	log         *slog.Logger
	maxAttempts int
	maxTxnOps   int
	pageSize    int64
	secrets     *SecretKey
	writePlain  bool
}

// New returns a Store using cli. The caller owns cli and closes it after
// the last use of the store.
func New(cli *clientv3.Client, opts Options) (*Store, error) {
	if cli == nil {
		return nil, errors.New("cluster: nil etcd client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("cluster: prefix %q must start and end with /", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	return &Store{
		cli:         cli,
		prefix:      opts.Prefix,
		log:         opts.Logger.With("component", "cluster"),
		maxAttempts: opts.MaxAttempts,
		maxTxnOps:   opts.MaxTxnOps,
		pageSize:    loadPageSize,
		secrets:     opts.SecretKey,
		writePlain:  opts.WritePlainSecrets,
	}, nil
}

// Prefix is the key prefix the store uses.
func (s *Store) Prefix() string { return s.prefix }

// SecretKey is the key the store encrypts and decrypts CHAP secrets with,
// nil when it has none.
func (s *Store) SecretKey() *SecretKey { return s.secrets }

func (s *Store) full(k Key) string { return s.prefix + string(k) }

func (s *Store) rel(full []byte) Key { return Key(strings.TrimPrefix(string(full), s.prefix)) }

// Load reads the whole cluster state at one revision and returns it with
// that revision.
func (s *Store) Load(ctx context.Context) (*Snapshot, int64, error) {
	snap, err := s.loadAt(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	return snap, snap.Rev, nil
}

// skippedPrefixes are the ranges under the prefix that hold no
// configuration and that Load does not read: the REST API's tokens and its
// audit trail (up to thousands of entries; gateway/tokens, gateway/audit),
// the event records and the gateways' published counters (gateway/events,
// gateway/stats). Sorted.
var skippedPrefixes = []string{"audit/", "events/", "stats/", "tokens/"}

// loadRanges are the [from, end) ranges Load reads: the prefix without
// skippedPrefixes.
func (s *Store) loadRanges() [][2]string {
	var out [][2]string
	from := s.prefix
	for _, p := range skippedPrefixes {
		out = append(out, [2]string{from, s.prefix + p})
		from = clientv3.GetPrefixRangeEnd(s.prefix + p)
	}
	return append(out, [2]string{from, clientv3.GetPrefixRangeEnd(s.prefix)})
}

// loadAt reads the state at rev (0: the current revision). Pages are all
// read at the revision of the first, so the result is one consistent cut.
func (s *Store) loadAt(ctx context.Context, rev int64) (*Snapshot, error) {
	snap := newSnapshot()
	snap.secrets = s.secrets
	for _, r := range s.loadRanges() {
		from, end := r[0], r[1]
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(s.pageSize)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := s.cli.Get(ctx, from, opts...)
			if err != nil {
				return nil, fmt.Errorf("cluster: load: %w", err)
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				k := s.rel(kv.Key)
				snap.applyKV(k, kv.Value, kv.ModRevision)
				if reason, bad := snap.Damaged[k]; bad {
					logDamaged(s.log, k, reason)
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	snap.Rev = rev
	if snap.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("%w: cluster schema %d, this build reads %d", ErrSchema, snap.SchemaVersion, SchemaVersion)
	}
	return snap, nil
}

// Commit validates ops against base and writes them in one transaction that
// succeeds only if nothing they depend on changed since base was read. It
// returns the new revision, or a *ConflictError (errors.Is ErrConflict) when
// the state moved on; nothing is written then. base comes from Load, Watch
// or a previous Update and is not modified. When base was written under an
// older schema the transaction also migrates it (migrate.go), even
// without ops.
func (s *Store) Commit(ctx context.Context, base *Snapshot, ops ...Op) (int64, error) {
	if len(ops) == 0 && !base.outdated() {
		return base.Rev, nil
	}
	p, err := buildPlan(base, ops)
	if err != nil {
		return 0, err
	}
	if !s.writePlain {
		p.secrets = s.secrets
	}
	p.plainOK = s.writePlain
	cmps, txnOps, err := p.txn(s.prefix, s.maxTxnOps)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(txnOps...).Commit()
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		// Refused before anything was written: the server's limit is
		// below Options.MaxTxnOps.
		return 0, fmt.Errorf("%w: etcd refused %d compares and %d writes (its --max-txn-ops is below %d)",
			ErrTooLarge, len(cmps), len(txnOps), s.maxTxnOps)
	}
	if err != nil {
		// The outcome is unknown (e.g. a timeout after the leader applied
		// it): report it rather than retry a write that may have happened.
		return 0, fmt.Errorf("cluster: commit: %w", err)
	}
	if !resp.Succeeded {
		return 0, &ConflictError{Rev: resp.Header.Revision, txn: true}
	}
	return resp.Header.Revision, nil
}

// Update runs a read-modify-write: it loads the state, asks fn for the ops
// to apply and commits them, retrying with a fresh snapshot (and a fresh
// call of fn) when a concurrent change wins the race, at most MaxAttempts
// times. fn must not keep or modify the snapshot. Errors from fn and
// validation errors end the update at once; a conflict on the last attempt
// is returned as *ConflictError. Returns the revision of the commit (the
// snapshot's revision when fn returns no ops).
func (s *Store) Update(ctx context.Context, fn func(*Snapshot) ([]Op, error)) (int64, error) {
	for attempt := 1; ; attempt++ {
		snap, _, err := s.Load(ctx)
		if err != nil {
			return 0, err
		}
		ops, err := fn(snap)
		if err != nil {
			return 0, err
		}
		rev, err := s.Commit(ctx, snap, ops...)
		var conflict *ConflictError
		if err == nil || !errors.As(err, &conflict) || !conflict.txn || attempt >= s.maxAttempts {
			return rev, err
		}
		// Spread the retries of writers that collided so that they do not
		// collide again in lock step.
		wait := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Apply commits ops against the current state, retrying like Update when
// an unrelated concurrent change interferes. Ops carrying IfAbsent or
// IfModRev still fail if their entity changed.
func (s *Store) Apply(ctx context.Context, ops ...Op) (int64, error) {
	return s.Update(ctx, func(*Snapshot) ([]Op, error) { return ops, nil })
}
