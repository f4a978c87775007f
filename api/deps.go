package api

import (
	"context"
	"errors"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// The API reaches etcd, Ceph and the gateways through these interfaces;
// the daemon wires the real implementations (cluster.Store, librbd, the
// gateway status published in etcd), tests may wire others.

// Store is the cluster configuration in etcd (cluster.Store).
type Store interface {
	Load(ctx context.Context) (*cluster.Snapshot, int64, error)
	Commit(ctx context.Context, base *cluster.Snapshot, ops ...cluster.Op) (int64, error)
	// NextPart is what to commit next of ops too large for one
	// transaction, and whether it is the last part (a target's delete
	// goes in parts; see cluster.Store.NextPart).
	NextPart(base *cluster.Snapshot, ops ...cluster.Op) ([]cluster.Op, bool, error)
}

// Ceph manages RBD images and reads the Ceph cluster's state. Errors wrap
// the sentinels below so that they map to HTTP statuses in one place.
type Ceph interface {
	CreateImage(pool, image string, size int64, opts ImageOptions) error
	ImageInfo(pool, image string) (ImageInfo, error)
	ResizeImage(pool, image string, size int64) error
	RemoveImage(pool, image string) error
	ListImages(pool string) ([]string, error)
	CreateSnapshot(pool, image, snap string) error
	RemoveSnapshot(pool, image, snap string) error
	ListSnapshots(pool, image string) ([]model.Snapshot, error)
	Health() (model.Cluster, error)
	Pools() ([]model.Pool, error)
}

// ImageOptions shape a new image.
type ImageOptions struct {
	Features   []string
	DataPool   string
	ObjectSize int64
}

// ImageInfo is what the API needs to know of an existing image.
type ImageInfo struct {
	Size       int64
	Features   []string
	LockOwners []string
}

// Errors a Ceph implementation wraps.
var (
	ErrCephNotFound = errors.New("not found in Ceph")
	ErrCephExists   = errors.New("already exists in Ceph")
	ErrCephBusy     = errors.New("image in use")
	ErrCephInvalid  = errors.New("refused by Ceph as invalid")
	ErrCephShrink   = errors.New("shrinking an image is refused")
	// ErrCephFailed marks any other failure of a Ceph call (HTTP 502).
	ErrCephFailed = errors.New("ceph operation failed")
)

// Gateways reports what each gateway published (liveness, applied
// revision, sessions) and waits for changes to be applied.
type Gateways interface {
	// Status lists every configured gateway; a gateway that is down is
	// reported as such, never as an error.
	Status(ctx context.Context) ([]GatewayStatus, error)
	// WaitApplied waits until each gateway in names that is live has
	// applied revision rev, or ctx ends; it returns the live ones still
	// pending and the ones that are down.
	WaitApplied(ctx context.Context, rev int64, names []string) (pending, down []string, err error)
}

// GatewayStatus is one gateway's published state.
type GatewayStatus struct {
	Name            string
	Live            bool
	Version         string
	Started         time.Time
	AppliedRevision int64
	AppliedComplete bool
	APIURL          string
	Sessions        []model.Session
}

// Role is what a token may do: viewers read, operators also change the
// configuration, admins also manage tokens and read the audit log.
type Role int

// Roles, in increasing power.
const (
	RoleViewer Role = iota + 1
	RoleOperator
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads "viewer", "operator" or "admin".
func ParseRole(s string) (Role, bool) {
	for _, r := range []Role{RoleViewer, RoleOperator, RoleAdmin} {
		if r.String() == s {
			return r, true
		}
	}
	return 0, false
}

// Principal is who a request comes from.
type Principal struct {
	TokenID string
	Name    string
	Role    Role
}

// Tokens verifies and manages bearer tokens.
type Tokens interface {
	// Verify returns the principal of a token, or ErrBadToken.
	Verify(ctx context.Context, token string) (Principal, error)
	Create(ctx context.Context, name string, role Role, ttl time.Duration) (string, model.Token, error)
	List(ctx context.Context) ([]model.Token, error)
	Revoke(ctx context.Context, id string) error
}

// Errors of a Tokens implementation.
var (
	ErrBadToken      = errors.New("invalid or revoked token")
	ErrTokenNotFound = errors.New("no such token")
)

// Audit records every write.
type Audit interface {
	Record(ctx context.Context, e model.AuditEntry) error
	List(ctx context.Context, limit int, before string) ([]model.AuditEntry, string, error)
}

// Stats reads the counters every gateway publishes in etcd (package
// gateway/stats).
type Stats interface {
	// Windows returns, by gateway name, the newest counters of each
	// gateway that published them and the base of their rates over
	// window ending now.
	Windows(ctx context.Context, window time.Duration) (map[string]stats.Window, error)
}

// Events follows what happens in the cluster (package gateway/events).
type Events interface {
	// Follow calls start with the revision the stream starts after (since,
	// or the current revision when since is 0), then send with the events
	// of each later revision in order, until ctx ends (it returns
	// ctx.Err()) or start or send fails (it returns that error). send is
	// called from the watch's goroutine and must not block.
	Follow(ctx context.Context, since int64, start func(rev int64) error, send func([]model.Event) error) error
}
