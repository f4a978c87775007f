package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/api/model"
)

// get decodes GET path into a new T.
func get[T any](ctx context.Context, c *Client, path string, q url.Values) (T, Response, error) {
	var out T
	res, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q}, &out)
	return out, res, err
}

// write sends a write and decodes its WriteResult.
func (c *Client) write(ctx context.Context, method, path string, q url.Values, body any, ifMatch string) (Result, error) {
	return c.send(ctx, request{method: method, path: path, query: q, body: body, ifMatch: ifMatch})
}

// create sends a create-only PUT (If-None-Match: *).
func (c *Client) create(ctx context.Context, path string, body any) (Result, error) {
	return c.send(ctx, request{method: http.MethodPut, path: path, body: body, createOnly: true})
}

func (c *Client) send(ctx context.Context, r request) (Result, error) {
	var out model.WriteResult
	res, err := c.do(ctx, r, &out)
	return Result{WriteResult: out, Status: res.Status, Location: res.Location, Method: r.method, Path: Prefix + r.path}, err
}

// Result is a write's answer: the API's WriteResult, the HTTP status
// (202 when ?wait=applied timed out before every gateway applied it) and,
// for a 201, the Location of what it created.
type Result struct {
	model.WriteResult
	Status       int    `json:"-"`
	Location     string `json:"-"`
	Method, Path string `json:"-"`
}

// Created is the path of what the write created below /api/v1
// ("targets/<iqn>/luns/3"), from the 201's Location; "" when it created
// nothing (or was a dry run).
func (r Result) Created() string {
	if r.Status != http.StatusCreated || r.Location == "" {
		return ""
	}
	loc := r.Location
	if u, err := url.Parse(loc); err == nil {
		loc = u.Path
	}
	if i := strings.Index(loc, Prefix+"/"); i >= 0 {
		return loc[i+len(Prefix)+1:]
	}
	return strings.TrimPrefix(loc, "/")
}

// IsExists reports the answer to a create-only write of an entity that
// exists: 412 (it was there before), or 409 "exists" (a concurrent create
// won).
func IsExists(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusPreconditionFailed || (e.Status == http.StatusConflict && e.Code == model.CodeExists)
}

// Pending reports a write committed but not yet applied everywhere.
func (r Result) Pending() bool { return r.Status == http.StatusAccepted }

// Info is GET /api/v1: the server answering and the configuration revision.
func (c *Client) Info(ctx context.Context) (model.Info, error) {
	v, _, err := get[model.Info](ctx, c, "", nil)
	return v, err
}

// Cluster is the Ceph cluster's health.
func (c *Client) Cluster(ctx context.Context) (model.Cluster, error) {
	v, _, err := get[model.Cluster](ctx, c, "/cluster", nil)
	return v, err
}

// Pools lists the Ceph pools with what is exported from each.
func (c *Client) Pools(ctx context.Context) ([]model.Pool, error) {
	v, _, err := get[[]model.Pool](ctx, c, "/pools", nil)
	return v, err
}

// Images lists the RBD images of a pool, exported or not.
func (c *Client) Images(ctx context.Context, pool string) ([]model.Image, error) {
	v, _, err := get[[]model.Image](ctx, c, "/pools/"+seg(pool)+"/images", nil)
	return v, err
}

// Gateways lists every gateway with its liveness.
func (c *Client) Gateways(ctx context.Context) ([]model.Gateway, error) {
	v, _, err := get[[]model.Gateway](ctx, c, "/gateways", nil)
	return v, err
}

// Gateway reads one gateway.
func (c *Client) Gateway(ctx context.Context, name string) (model.Gateway, error) {
	v, _, err := get[model.Gateway](ctx, c, "/gateways/"+seg(name), nil)
	return v, err
}

// Disks lists the disks.
func (c *Client) Disks(ctx context.Context) ([]model.Disk, error) {
	v, _, err := get[[]model.Disk](ctx, c, "/disks", nil)
	return v, err
}

// Disk reads one disk ("pool/image") with what Ceph says of its image,
// and its ETag.
func (c *Client) Disk(ctx context.Context, id string) (model.Disk, string, error) {
	v, res, err := get[model.Disk](ctx, c, diskPath(id), nil)
	return v, res.ETag, err
}

// PutDisk creates (Size set), imports (Size nil) or changes a disk.
func (c *Client) PutDisk(ctx context.Context, id string, in model.DiskPut, ifMatch string) (Result, error) {
	return c.write(ctx, http.MethodPut, diskPath(id), nil, in, ifMatch)
}

// CreateDisk creates a disk (Size set: with a new image; Size nil: by
// importing the image), refusing with 412 when the disk exists.
func (c *Client) CreateDisk(ctx context.Context, id string, in model.DiskPut) (Result, error) {
	return c.create(ctx, diskPath(id), in)
}

// DeleteDisk removes a disk from the configuration, and its image too
// when removeImage is set.
func (c *Client) DeleteDisk(ctx context.Context, id string, removeImage bool) (Result, error) {
	q := url.Values{}
	if removeImage {
		q.Set("remove_image", "true")
	}
	return c.write(ctx, http.MethodDelete, diskPath(id), q, nil, "")
}

// Snapshots lists the snapshots of a disk's image.
func (c *Client) Snapshots(ctx context.Context, id string) ([]model.Snapshot, error) {
	v, _, err := get[[]model.Snapshot](ctx, c, diskPath(id)+"/snapshots", nil)
	return v, err
}

// CreateSnapshot snapshots a disk's image.
func (c *Client) CreateSnapshot(ctx context.Context, id, name string) (Result, error) {
	return c.write(ctx, http.MethodPost, diskPath(id)+"/snapshots", nil, model.SnapshotCreate{Name: name}, "")
}

// DeleteSnapshot deletes a snapshot of a disk's image.
func (c *Client) DeleteSnapshot(ctx context.Context, id, name string) (Result, error) {
	return c.write(ctx, http.MethodDelete, diskPath(id)+"/snapshots/"+seg(name), nil, nil, "")
}

func targetPath(iqn string) string { return "/targets/" + seg(iqn) }

// Targets lists the targets.
func (c *Client) Targets(ctx context.Context) ([]model.Target, error) {
	v, _, err := get[[]model.Target](ctx, c, "/targets", nil)
	return v, err
}

// Target reads one target and its ETag.
func (c *Client) Target(ctx context.Context, iqn string) (model.Target, string, error) {
	v, res, err := get[model.Target](ctx, c, targetPath(iqn), nil)
	return v, res.ETag, err
}

// PutTarget creates or replaces a target's settings.
func (c *Client) PutTarget(ctx context.Context, iqn string, in model.TargetPut, ifMatch string) (Result, error) {
	return c.write(ctx, http.MethodPut, targetPath(iqn), nil, in, ifMatch)
}

// CreateTarget creates a target, refusing with 412 when it exists.
func (c *Client) CreateTarget(ctx context.Context, iqn string, in model.TargetPut) (Result, error) {
	return c.create(ctx, targetPath(iqn), in)
}

// DeleteTarget deletes a target with its LUNs, hosts and groups.
func (c *Client) DeleteTarget(ctx context.Context, iqn string) (Result, error) {
	return c.write(ctx, http.MethodDelete, targetPath(iqn), nil, nil, "")
}

// TargetGateways lists the gateways serving a target.
func (c *Client) TargetGateways(ctx context.Context, iqn string) ([]model.Gateway, error) {
	v, _, err := get[[]model.Gateway](ctx, c, targetPath(iqn)+"/gateways", nil)
	return v, err
}

// PutTargetGateway adds a gateway to a target, creating it when portals
// are given and it does not exist.
func (c *Client) PutTargetGateway(ctx context.Context, iqn, name string, portals []string) (Result, error) {
	return c.write(ctx, http.MethodPut, targetPath(iqn)+"/gateways/"+seg(name), nil, model.TargetGatewayPut{Portals: portals}, "")
}

// DeleteTargetGateway removes a gateway from a target.
func (c *Client) DeleteTargetGateway(ctx context.Context, iqn, name string) (Result, error) {
	return c.write(ctx, http.MethodDelete, targetPath(iqn)+"/gateways/"+seg(name), nil, nil, "")
}

// LUNs lists the LUNs of a target.
func (c *Client) LUNs(ctx context.Context, iqn string) ([]model.LUN, error) {
	v, _, err := get[[]model.LUN](ctx, c, targetPath(iqn)+"/luns", nil)
	return v, err
}

// MapLUN maps a disk to a target at id, or at the lowest free id when id
// is nil; LUNOf tells the id it took.
func (c *Client) MapLUN(ctx context.Context, iqn, disk string, id *uint64) (Result, error) {
	if id == nil {
		return c.write(ctx, http.MethodPost, targetPath(iqn)+"/luns", nil, model.LUNPut{Disk: disk}, "")
	}
	return c.write(ctx, http.MethodPut, targetPath(iqn)+"/luns/"+strconv.FormatUint(*id, 10), nil, model.LUNPut{Disk: disk}, "")
}

// LUNOf reads the LUN id a map created from the 201's Location
// (".../targets/<iqn>/luns/<id>").
func LUNOf(r Result) (uint64, bool) {
	p := r.Created()
	i := strings.LastIndex(p, "/luns/")
	if i < 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(p[i+len("/luns/"):], 10, 64)
	return id, err == nil
}

// DeleteLUN unmaps a LUN.
func (c *Client) DeleteLUN(ctx context.Context, iqn string, id uint64) (Result, error) {
	return c.write(ctx, http.MethodDelete, targetPath(iqn)+"/luns/"+strconv.FormatUint(id, 10), nil, nil, "")
}

func hostPath(iqn, ini string) string { return targetPath(iqn) + "/hosts/" + seg(ini) }

// Hosts lists the hosts of a target.
func (c *Client) Hosts(ctx context.Context, iqn string) ([]model.Host, error) {
	v, _, err := get[[]model.Host](ctx, c, targetPath(iqn)+"/hosts", nil)
	return v, err
}

// Host reads one host and its ETag.
func (c *Client) Host(ctx context.Context, iqn, ini string) (model.Host, string, error) {
	v, res, err := get[model.Host](ctx, c, hostPath(iqn, ini), nil)
	return v, res.ETag, err
}

// PutHost creates or replaces a host.
func (c *Client) PutHost(ctx context.Context, iqn, ini string, in model.HostPut, ifMatch string) (Result, error) {
	return c.write(ctx, http.MethodPut, hostPath(iqn, ini), nil, in, ifMatch)
}

// CreateHost admits an initiator, refusing with 412 when it is a host
// of the target already.
func (c *Client) CreateHost(ctx context.Context, iqn, ini string, in model.HostPut) (Result, error) {
	return c.create(ctx, hostPath(iqn, ini), in)
}

// DeleteHost removes a host.
func (c *Client) DeleteHost(ctx context.Context, iqn, ini string) (Result, error) {
	return c.write(ctx, http.MethodDelete, hostPath(iqn, ini), nil, nil, "")
}

func groupPath(iqn, name string) string { return targetPath(iqn) + "/host-groups/" + seg(name) }

// HostGroups lists the host groups of a target.
func (c *Client) HostGroups(ctx context.Context, iqn string) ([]model.HostGroup, error) {
	v, _, err := get[[]model.HostGroup](ctx, c, targetPath(iqn)+"/host-groups", nil)
	return v, err
}

// HostGroup reads one host group and its ETag.
func (c *Client) HostGroup(ctx context.Context, iqn, name string) (model.HostGroup, string, error) {
	v, res, err := get[model.HostGroup](ctx, c, groupPath(iqn, name), nil)
	return v, res.ETag, err
}

// PutHostGroup creates or replaces a host group.
func (c *Client) PutHostGroup(ctx context.Context, iqn, name string, in model.HostGroupPut, ifMatch string) (Result, error) {
	return c.write(ctx, http.MethodPut, groupPath(iqn, name), nil, in, ifMatch)
}

// CreateHostGroup creates a host group, refusing with 412 when it exists.
func (c *Client) CreateHostGroup(ctx context.Context, iqn, name string, in model.HostGroupPut) (Result, error) {
	return c.create(ctx, groupPath(iqn, name), in)
}

// DeleteHostGroup deletes a host group (its members stay).
func (c *Client) DeleteHostGroup(ctx context.Context, iqn, name string) (Result, error) {
	return c.write(ctx, http.MethodDelete, groupPath(iqn, name), nil, nil, "")
}

// DiscoveryAuth reads the CHAP required on discovery sessions.
func (c *Client) DiscoveryAuth(ctx context.Context) (model.DiscoveryAuth, error) {
	v, _, err := get[model.DiscoveryAuth](ctx, c, "/discovery-auth", nil)
	return v, err
}

// PutDiscoveryAuth requires CHAP on discovery sessions.
func (c *Client) PutDiscoveryAuth(ctx context.Context, chap model.CHAP) (Result, error) {
	return c.write(ctx, http.MethodPut, "/discovery-auth", nil, chap, "")
}

// DeleteDiscoveryAuth lets discovery sessions in without CHAP.
func (c *Client) DeleteDiscoveryAuth(ctx context.Context) (Result, error) {
	return c.write(ctx, http.MethodDelete, "/discovery-auth", nil, nil, "")
}

// SessionFilter narrows GET /sessions; empty fields do not filter.
type SessionFilter struct {
	Gateway, Target, Initiator string
}

// Sessions lists the live iSCSI sessions.
func (c *Client) Sessions(ctx context.Context, f SessionFilter) (model.Sessions, error) {
	q := url.Values{}
	if f.Gateway != "" {
		q.Set("gateway", f.Gateway)
	}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	if f.Initiator != "" {
		q.Set("initiator", f.Initiator)
	}
	v, _, err := get[model.Sessions](ctx, c, "/sessions", q)
	return v, err
}

// Export reads the whole configuration, secrets masked, as the API's
// document decoded, and as the raw body in the format asked ("json" or
// "yaml").
func (c *Client) Export(ctx context.Context, format string) ([]byte, error) {
	q := url.Values{}
	if format != "" && format != "json" {
		q.Set("format", format)
	}
	var raw []byte
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/config/export", query: q, raw: &raw}, nil)
	return raw, err
}
