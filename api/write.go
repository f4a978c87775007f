package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// change describes one write: the entity it is about (its mod revision is
// the ETag that If-Match is checked against) and how to build the ops from
// the current configuration.
type change struct {
	// entity is the key of the resource the URL names; "" when the write
	// has no single entity (an import).
	entity cluster.Key
	build  func(snap *cluster.Snapshot) ([]cluster.Op, error)
	// target, when set, limits wait=applied to the gateways serving it.
	target string
	// inParts lets the change be committed in several transactions when
	// it does not fit one (cluster.Store.NextPart): a target's delete.
	inParts bool
	// status is the success status (200 when 0).
	status int
}

// maxWriteAttempts bounds the retries of a write that lost a race with an
// unrelated change; between two attempts it waits a random time below
// retryBackoff doubled at each attempt (at most maxRetryBackoff), so that
// writers that collided do not collide again in lock step. Through two
// gateways, a write may lose to every one of the other gateway's queued
// writes in turn: 8 attempts (at most 0.6 s of waits) were too few for
// 20 queued there on a loaded machine; 16 wait up to 3.8 s.
const (
	maxWriteAttempts = 16
	retryBackoff     = 5 * time.Millisecond
	maxRetryBackoff  = 400 * time.Millisecond
)

// backoff is the wait before attempt (2, 3, ...).
func backoff(attempt int) time.Duration {
	limit := min(retryBackoff<<(attempt-2), maxRetryBackoff)
	return time.Duration(rand.Int64N(int64(limit))) + time.Millisecond
}

// commit runs a change: If-Match, dry run, the transaction (retried when
// an unrelated change won a race), wait=applied, ETag. It writes the
// response.
func (s *Server) commit(c *gin.Context, ch change) {
	res, status, err := s.commitChange(c, ch)
	if err != nil {
		s.fail(c, err)
		return
	}
	setETag(c, res)
	if status == 0 {
		status = ch.status
	}
	if status == 0 || (status == http.StatusCreated && len(res.Changes) == 0) {
		status = http.StatusOK // nothing created
	}
	setLocation(c, status, res)
	s.ok(c, status, res)
}

// setETag gives a write's answer the revision it committed as its ETag.
func setETag(c *gin.Context, res model.WriteResult) {
	if !res.DryRun {
		c.Header("ETag", etag(res.Revision))
	}
}

// setLocation names what a 201 created: the first key put, whose path is
// the resource's URL under the API prefix (disks/<pool>/<image>,
// targets/<iqn>/luns/<id>, ...).
func setLocation(c *gin.Context, status int, res model.WriteResult) {
	if status != http.StatusCreated || res.DryRun {
		return
	}
	for _, ch := range res.Changes {
		if ch.Op == "put" && ch.Key != string(cluster.SchemaKey) {
			c.Header("Location", APIPrefix+"/"+ch.Key)
			return
		}
	}
}

// commitChange is commit without the response; status is 202 when
// wait=applied timed out, else 0.
func (s *Server) commitChange(c *gin.Context, ch change) (model.WriteResult, int, error) {
	var res model.WriteResult
	pre, err := parsePreconditions(c)
	if err != nil {
		return res, 0, err
	}
	dryRun, err := boolQuery(c, "dry_run")
	if err != nil {
		return res, 0, err
	}
	wait, timeout, err := waitQuery(c)
	if err != nil {
		return res, 0, err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	// This API's writes commit one at a time: many guard whole ranges
	// (mapping a LUN guards every target, to keep a disk mapped once), so
	// concurrent ones through one gateway would only make each other
	// start again; writes through other gateways are retried.
	select {
	case s.commitSem <- struct{}{}:
	case <-ctx.Done():
		return res, 0, ctx.Err()
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-s.commitSem
		}
	}
	defer release()
	res, snap, same, err := s.commitParts(ctx, c, ch, pre, dryRun)
	if err != nil || res.DryRun {
		return res, 0, err
	}
	release()
	rev := res.Revision
	if len(res.Changes) == 0 && !same {
		return res, 0, nil
	}
	// Also when nothing was written: a write retried after a 202 waits
	// for the gateways to have the entity, as the first did.
	if !wait {
		return res, 0, nil
	}
	// The gateways concerned are those serving the target before and
	// after the change (a gateway just added must apply it too).
	names := s.waitGateways(snap, ch.target)
	if after, _, err := s.opts.Store.Load(ctx); err == nil {
		for _, n := range s.waitGateways(after, ch.target) {
			if !contains(names, n) {
				names = append(names, n)
			}
		}
	}
	applied, err := s.waitApplied(c.Request.Context(), rev, names, timeout)
	if err != nil {
		return res, 0, err
	}
	res.Applied = applied
	if !applied.Done {
		return res, http.StatusAccepted, nil
	}
	return res, 0, nil
}

// commitParts runs the transactions of a change: one, or one per part for
// a change made in parts (ch.inParts). A transaction that lost a race with
// an unrelated change is retried from a fresh snapshot, against which the
// preconditions are checked again; each part has its own retries. snap is
// the state the last transaction was built from. same: nothing was
// written because the entity is already as asked, and res carries the
// revision that wrote it.
func (s *Server) commitParts(ctx context.Context, c *gin.Context, ch change, pre preconditions, dryRun bool) (res model.WriteResult, snap *cluster.Snapshot, same bool, err error) {
	var rev int64
	parts := 0
	committed := []model.Change{}
	defer func() {
		if err != nil && parts > 0 {
			err = stoppedInParts(err, parts, len(committed), rev)
		}
	}()
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			select {
			case <-time.After(backoff(attempt)):
			case <-ctx.Done():
				return res, snap, false, ctx.Err()
			}
		}
		snap, _, err = s.opts.Store.Load(ctx)
		if err != nil {
			return res, snap, false, err
		}
		if err := pre.check(snap, ch.entity); err != nil {
			return res, snap, false, err
		}
		ops, err := ch.build(snap)
		if err != nil {
			return res, snap, false, err
		}
		if pre.createOnly {
			for i, op := range ops {
				if op.Key() == ch.entity {
					ops[i] = op.IfAbsent() // a concurrent create loses with 409
				}
			}
		}
		changes, err := cluster.Preview(snap, ops...)
		if err != nil {
			return res, snap, false, err
		}
		if parts == 0 && unchanged(snap, changes) {
			// PUT is desired state: the same document again writes
			// nothing (no revision, no event, no reconcile).
			ops, changes = nil, nil
		}
		if dryRun {
			// All of it, also what would go in parts.
			return model.WriteResult{Revision: snap.Rev, DryRun: true, Changes: showChanges(changes)}, snap, false, nil
		}
		if len(ops) == 0 {
			if parts == 0 {
				rev = snap.Rev
				// Nothing to write: the answer is the revision that wrote
				// the entity as it is (its ETag, which If-Match takes and
				// the gateways' applied revision reaches), not the
				// cluster's, which audit records move on.
				if r := snap.ModRev(ch.entity); ch.entity != "" && r > 0 {
					rev, same = r, true
				}
			}
			return model.WriteResult{Revision: rev, Changes: committed}, snap, same, nil
		}
		part, last := ops, true
		if ch.inParts {
			if part, last, err = s.opts.Store.NextPart(snap, ops...); err != nil {
				return res, snap, false, err
			}
			if !last {
				if changes, err = cluster.Preview(snap, part...); err != nil {
					return res, snap, false, err
				}
			}
		}
		r, err := s.opts.Store.Commit(ctx, snap, part...)
		var conflict *cluster.ConflictError
		if errors.As(err, &conflict) && attempt < maxWriteAttempts {
			continue // reload; If-Match is checked against the new state
		}
		if err != nil {
			return res, snap, false, err
		}
		rev = r
		parts++
		committed = append(committed, showChanges(changes)...)
		// The audit records the last revision written, also when a later
		// part fails.
		c.Set(ctxRevision, rev)
		if last {
			res = model.WriteResult{Revision: rev, Changes: committed}
			if parts > 1 {
				res.Parts = parts
			}
			return res, snap, false, nil
		}
		attempt = 0
	}
}

// stoppedInParts adds to the error of a change made in parts what its
// committed parts did: each left a consistent state, and sending the
// request again finishes the change.
func stoppedInParts(err error, parts, keys int, rev int64) error {
	note := fmt.Sprintf(" (the change was being made in parts: %d of them, %d keys, were committed, up to revision %d; send it again to finish)",
		parts, keys, rev)
	var e *Error
	if errors.As(err, &e) {
		cp := *e
		cp.Message += note
		return &cp
	}
	return fmt.Errorf("%w%s", err, note)
}

// preconditions are a write's If-Match and If-None-Match.
type preconditions struct {
	ifMatch    int64 // -1: "*"
	hasIfMatch bool
	ifMatchRaw string
	createOnly bool
}

func parsePreconditions(c *gin.Context) (preconditions, error) {
	var p preconditions
	var err error
	p.ifMatchRaw = c.GetHeader("If-Match")
	if p.ifMatch, p.hasIfMatch, err = parseIfMatch(p.ifMatchRaw); err != nil {
		return p, err
	}
	p.createOnly, err = parseIfNoneMatch(c.GetHeader("If-None-Match"))
	return p, err
}

// check answers 412 when entity, as snap has it, does not meet the
// preconditions. commitChange checks them against every snapshot it
// writes from (the transaction compares that snapshot's revisions); a
// write with side effects outside etcd (a Ceph image created or grown)
// checks them first against the snapshot it acts on, so that a refused
// request has no effect.
func (p preconditions) check(snap *cluster.Snapshot, entity cluster.Key) error {
	cur := snap.ModRev(entity)
	if p.hasIfMatch && ((p.ifMatch == -1 && cur == 0) || (p.ifMatch != -1 && cur != p.ifMatch)) {
		e := newError(http.StatusPreconditionFailed, model.CodePreconditionFailed,
			"%s changed since you read it (If-Match %s, now %s); read it again and retry", entity, p.ifMatchRaw, etag(cur))
		if cur == 0 {
			// Not "changed": it is gone (or never was), as If-Match: * says.
			e.Message = fmt.Sprintf("%s does not exist (If-Match %s)", entity, p.ifMatchRaw)
		}
		e.Details = map[string]any{"current": cur}
		return e
	}
	if p.createOnly && entity != "" && cur != 0 {
		e := newError(http.StatusPreconditionFailed, model.CodePreconditionFailed,
			"%s already exists (If-None-Match: *)", entity)
		e.Details = map[string]any{"current": cur}
		return e
	}
	return nil
}

// waitGateways are the gateways a change must reach: those serving the
// target, or every gateway.
func (s *Server) waitGateways(snap *cluster.Snapshot, target string) []string {
	if t, ok := snap.Targets[target]; ok && target != "" {
		return slices.Clone(t.Gateways)
	}
	return snap.GatewayNames()
}

func (s *Server) waitApplied(ctx context.Context, rev int64, names []string, timeout time.Duration) (*model.Applied, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending, down, err := s.opts.Gateways.WaitApplied(wctx, rev, names)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	a := &model.Applied{Done: len(pending) == 0, Pending: nonNil(pending), Down: nonNil(down), Gateways: []string{}}
	for _, n := range names {
		if !contains(pending, n) && !contains(down, n) {
			a.Gateways = append(a.Gateways, n)
		}
	}
	return a, nil
}

// unchanged reports changes that are all puts of the records snap holds
// already (secrets compared in clear). A damaged record is never taken as
// unchanged, so that writing it again repairs it.
func unchanged(snap *cluster.Snapshot, changes []cluster.KeyChange) bool {
	if len(changes) == 0 {
		return false
	}
	for _, ch := range changes {
		if ch.Delete {
			return false
		}
		if _, bad := snap.Damaged[ch.Key]; bad {
			return false
		}
		cur, ok := snap.Record(ch.Key)
		if !ok || !reflect.DeepEqual(cur, ch.Value) {
			return false
		}
	}
	return true
}

// showChanges renders changes for a response, secrets masked.
func showChanges(changes []cluster.KeyChange) []model.Change {
	out := make([]model.Change, 0, len(changes))
	for _, ch := range changes {
		if ch.Delete {
			out = append(out, model.Change{Op: "delete", Key: string(ch.Key)})
			continue
		}
		out = append(out, model.Change{Op: "put", Key: string(ch.Key), Value: maskValue(ch.Value)})
	}
	return out
}

// maskValue returns v as generic JSON with every CHAP secret masked.
func maskValue(v any) any {
	switch x := v.(type) {
	case config.CHAP:
		return chapOut(&x)
	case *config.CHAP:
		return chapOut(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var generic any
	if json.Unmarshal(b, &generic) != nil {
		return nil
	}
	maskGeneric(generic)
	return generic
}

func maskGeneric(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if (k == "secret" || k == "mutual_secret") && val != "" {
				x[k] = model.Masked
				continue
			}
			maskGeneric(val)
		}
	case []any:
		for _, e := range x {
			maskGeneric(e)
		}
	}
}

// etag renders a mod revision as a strong entity tag.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// parseIfMatch reads If-Match: one revision, quoted or not, or "*"
// (returned as -1: the entity must exist).
func parseIfMatch(h string) (rev int64, ok bool, err error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false, nil
	}
	if h == "*" {
		return -1, true, nil
	}
	v := strings.TrimPrefix(h, "W/")
	v = strings.Trim(v, `"`)
	rev, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil || rev < 0 {
		return 0, false, invalidf("If-Match %q: expected one ETag as returned by the API, e.g. \"1234\"", h)
	}
	return rev, true, nil
}

// parseIfNoneMatch accepts only "*": create, do not replace.
func parseIfNoneMatch(h string) (bool, error) {
	switch strings.TrimSpace(h) {
	case "":
		return false, nil
	case "*":
		return true, nil
	}
	return false, invalidf("If-None-Match %q: only \"*\" (create only) is supported on writes", h)
}

func boolQuery(c *gin.Context, name string) (bool, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return false, nil
	}
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidf("query parameter %s=%q: expected true or false", name, v)
	}
	return b, nil
}

func waitQuery(c *gin.Context) (bool, time.Duration, error) {
	timeout := model.DefaultWaitTimeout
	if t, ok := c.GetQuery("timeout"); ok {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > model.MaxWaitTimeout {
			return false, 0, invalidf("query parameter timeout=%q: expected a duration up to %s, e.g. 30s", t, model.MaxWaitTimeout)
		}
		timeout = d
	}
	w, ok := c.GetQuery("wait")
	if !ok {
		return false, timeout, nil
	}
	if w != "applied" {
		return false, 0, invalidf("query parameter wait=%q: the only value is \"applied\"", w)
	}
	return true, timeout, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
