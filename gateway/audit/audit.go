// Package audit keeps the audit trail of the writes made through the REST
// API (and the break-glass writes of rbdgw-admin) in etcd.
//
// Each entry is stored under <prefix>audit/<sequence>, the sequence a
// 20-digit zero-padded decimal number taken from the counter key
// <prefix>audit/seq in the same transaction that stores the entry, so
// entries of all gateways form one gap-free sequence. Only the newest
// entries are kept (Options.Keep): every Keep/10 entries the older ones are
// deleted in one range delete. Every entry is also written as one
// structured log line (component=audit), so the trail survives in the
// journal when etcd cannot take it.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Entry is one audited write. Its fields match the REST API's
// model.AuditEntry one for one, so either converts to the other.
type Entry struct {
	Time time.Time `json:"time"`
	// TokenID and TokenName name the principal: the API token used.
	TokenID   string `json:"token_id"`
	TokenName string `json:"token_name"`
	Role      string `json:"role"`
	// Remote is the client's address.
	Remote string `json:"remote"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Body is the request body with secrets masked (see MaskSecrets).
	Body string `json:"body,omitempty"`
	// Revision is the etcd revision of the change, 0 when nothing was
	// written.
	Revision int64 `json:"revision"`
	// Status is the HTTP status of the response; Code its error code, if any.
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
}

// Defaults of Options.
const (
	DefaultPrefix  = "/rbdgw/"
	DefaultKeep    = 10000
	DefaultMaxBody = 64 << 10
	// DefaultListLimit is the page size of List when it is given none.
	DefaultListLimit = 100
)

// ErrBadCursor: the before argument of List is not a cursor List returned.
var ErrBadCursor = errors.New("invalid audit cursor")

// Options tune a Log; the zero value gives the defaults.
type Options struct {
	// Keep is how many of the newest entries are kept (DefaultKeep when 0).
	// Older ones are deleted in batches of Keep/10 (at least 1, at most
	// 1000), so up to Keep plus one batch are stored at a time.
	Keep int
	// MaxBody bounds the bytes of a request body stored with an entry;
	// longer bodies are cut (DefaultMaxBody when 0).
	MaxBody int
	// Logger receives one line per entry; slog.Default() when nil.
	Logger *slog.Logger
}

// Keys relative to the cluster prefix.
const (
	auditDir   = "audit/"
	counterKey = auditDir + "seq"
	seqDigits  = 20
	// maxAttempts bounds the retries of a Record that races other
	// gateways for the next sequence number.
	maxAttempts = 32
	// listChunk bounds the entries read per etcd request.
	listChunk = 256
)

// Log is the audit trail of one cluster.
type Log struct {
	cli     *clientv3.Client
	prefix  string
	keep    uint64
	batch   uint64
	maxBody int
	log     *slog.Logger

	mu sync.Mutex // serialises Record; guards the counter cache
	// The counter as last seen: its value and mod revision (0: absent).
	lastSeq uint64
	lastMod int64
}

// New returns the audit log under prefix (the cluster prefix, e.g.
// "/rbdgw/"; DefaultPrefix when empty). The caller owns cli.
func New(cli *clientv3.Client, prefix string, opts Options) *Log {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Log{
		cli:     cli,
		prefix:  prefix,
		keep:    uint64(opts.Keep),
		batch:   uint64(min(max(opts.Keep/10, 1), 1000)),
		maxBody: opts.MaxBody,
		log:     opts.Logger.With("component", "audit"),
	}
}

func (l *Log) entryKey(seq uint64) string {
	return fmt.Sprintf("%s%s%0*d", l.prefix, auditDir, seqDigits, seq)
}

// Record stores e (its Time set to now when zero, its body masked again
// and cut to Options.MaxBody) and logs it. It returns an error when etcd
// did not take the entry; the log line is written either way.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Body = l.body(e.Body)
	seq, err := l.store(ctx, e)
	attrs := []any{
		"token_id", e.TokenID, "token_name", e.TokenName, "role", e.Role, "remote", e.Remote,
		"method", e.Method, "path", e.Path, "status", e.Status, "revision", e.Revision,
	}
	if e.Code != "" {
		attrs = append(attrs, "code", e.Code)
	}
	if err != nil {
		l.log.Warn("write (not stored in etcd)", append(attrs, "err", err)...)
		return err
	}
	l.log.Info("write", append(attrs, "seq", seq)...)
	return nil
}

// body masks secrets and bounds the size of a stored body.
func (l *Log) body(b string) string {
	if b == "" {
		return ""
	}
	s := string(MaskSecrets([]byte(b)))
	if len(s) <= l.maxBody {
		return s
	}
	cut := l.maxBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("...(cut, %d bytes in all)", len(s))
}

// store puts e under the next sequence number and trims old entries.
func (l *Log) store(ctx context.Context, e Entry) (uint64, error) {
	val, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	counter := l.prefix + counterKey
	for attempt := 0; attempt < maxAttempts; attempt++ {
		seq := l.lastSeq + 1
		resp, err := l.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(counter), "=", l.lastMod)).
			Then(clientv3.OpPut(counter, strconv.FormatUint(seq, 10)), clientv3.OpPut(l.entryKey(seq), string(val))).
			Else(clientv3.OpGet(counter)).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("audit: record: %w", err)
		}
		if resp.Succeeded {
			l.lastSeq, l.lastMod = seq, resp.Header.Revision
			l.trim(ctx, seq)
			return seq, nil
		}
		// Another gateway took the number: learn the counter and retry.
		l.lastSeq, l.lastMod = 0, 0
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			n, err := strconv.ParseUint(string(kvs[0].Value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("audit: record: counter %s holds %q", counter, kvs[0].Value)
			}
			l.lastSeq, l.lastMod = n, kvs[0].ModRevision
		}
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("audit: record: %w", ctx.Err())
			case <-time.After(time.Duration(rand.N(attempt*5)+1) * time.Millisecond):
			}
		}
	}
	return 0, errors.New("audit: record: too many concurrent writers; entry not stored")
}

// trim deletes the entries older than the newest Keep, once per batch.
func (l *Log) trim(ctx context.Context, seq uint64) {
	if seq%l.batch != 0 || seq <= l.keep {
		return
	}
	if _, err := l.cli.Delete(ctx, l.entryKey(0), clientv3.WithRange(l.entryKey(seq-l.keep+1))); err != nil {
		// The next batch deletes this one's entries too.
		l.log.Warn("cannot trim the audit log", "err", err)
	}
}

// List returns up to limit entries (DefaultListLimit when limit <= 0),
// newest first, older than the cursor before ("" for the newest), and the
// cursor of the next page ("" when there are no older entries). A cursor
// is the sequence number of the oldest entry returned.
func (l *Log) List(ctx context.Context, limit int, before string) ([]Entry, string, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	var hi uint64 // exclusive upper bound of the sequence
	var rev int64 // every read is pinned to the revision of the first
	if before == "" {
		resp, err := l.cli.Get(ctx, l.prefix+counterKey)
		if err != nil {
			return nil, "", fmt.Errorf("audit: list: %w", err)
		}
		rev = resp.Header.Revision
		if len(resp.Kvs) == 0 {
			return []Entry{}, "", nil
		}
		n, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("audit: list: counter holds %q", resp.Kvs[0].Value)
		}
		hi = n + 1
	} else {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("%w: %q", ErrBadCursor, before)
		}
		hi = n
	}

	type seqEntry struct {
		seq uint64
		e   Entry
	}
	var got []seqEntry
	want := uint64(limit) + 1 // one more tells whether there is a next page
	get := func(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := l.cli.Get(ctx, key, opts...)
		if err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		return resp, nil
	}
	for hi > 1 && uint64(len(got)) < want {
		n := min(want-uint64(len(got)), listChunk)
		lo := uint64(1)
		if hi > n {
			lo = hi - n
		}
		resp, err := get(l.entryKey(lo), clientv3.WithRange(l.entryKey(hi)))
		if err != nil {
			return nil, "", err
		}
		full := uint64(len(resp.Kvs)) == hi-lo
		for i := len(resp.Kvs) - 1; i >= 0; i-- {
			kv := resp.Kvs[i]
			seq, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), l.prefix+auditDir), 10, 64)
			var e Entry
			if err == nil {
				err = json.Unmarshal(kv.Value, &e)
			}
			if err != nil {
				l.log.Warn("undecodable audit entry", "key", string(kv.Key), "err", err)
				continue
			}
			got = append(got, seqEntry{seq, e})
		}
		hi = lo
		if !full && hi > 1 {
			// Fewer keys than numbers: trimmed (or deleted by hand). Jump
			// to the newest entry below the window, if any.
			resp, err := get(l.entryKey(0), clientv3.WithRange(l.entryKey(hi)),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
			if err != nil {
				return nil, "", err
			}
			if len(resp.Kvs) == 0 {
				break
			}
			seq, err := strconv.ParseUint(strings.TrimPrefix(string(resp.Kvs[0].Key), l.prefix+auditDir), 10, 64)
			if err != nil {
				break
			}
			hi = seq + 1
		}
	}
	next := ""
	if uint64(len(got)) > uint64(limit) {
		got = got[:limit]
		next = strconv.FormatUint(got[limit-1].seq, 10)
	}
	out := make([]Entry, len(got))
	for i, g := range got {
		out[i] = g.e
	}
	return out, next, nil
}
