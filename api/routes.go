package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// route is one API operation: what gin serves and what the OpenAPI
// document says, from the same entry, so the two cannot drift apart.
type route struct {
	method, path string // gin syntax: /disks/:pool/:image
	summary      string
	// role needed; 0: public (no token).
	role Role
	// req is the body document (nil: none); resp the success document.
	req, resp any
	// status is the success status; errs the other statuses it returns.
	status int
	errs   []int
	query  []param
	// tag groups the route in the document.
	tag     string
	handler gin.HandlerFunc
	// stream: the success response is a text/event-stream of resp
	// documents; headers are documented request headers.
	stream  bool
	headers []param
}

// param is a documented query parameter.
type param struct {
	name, typ, desc string
}

func (r route) writes() bool { return r.method != http.MethodGet }

// Statuses every route may return besides its own.
var (
	authErrs  = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable, http.StatusInternalServerError}
	writeErrs = []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusConflict, http.StatusPreconditionFailed, http.StatusAccepted}
)

// Query parameters of writes.
var writeQuery = []param{
	{"dry_run", "boolean", "validate and return the changes without committing"},
	{"wait", "string", "\"applied\": return once every live gateway concerned has applied the change (202 with the pending gateways on timeout)"},
	{"timeout", "string", "how long wait=applied waits, e.g. 30s (default 30s, at most 5m)"},
}

// table lists every route.
func (s *Server) table() []route {
	get := func(path, summary, tag string, resp any, h gin.HandlerFunc, errs ...int) route {
		return route{method: http.MethodGet, path: path, summary: summary, role: RoleViewer, resp: resp,
			status: http.StatusOK, errs: errs, tag: tag, handler: h}
	}
	write := func(method, path, summary, tag string, req any, h gin.HandlerFunc, errs ...int) route {
		return route{method: method, path: path, summary: summary, role: RoleOperator, req: req,
			resp: model.WriteResult{}, status: http.StatusOK, errs: append(errs, writeErrs...), query: writeQuery, tag: tag, handler: h}
	}
	nf := http.StatusNotFound
	rs := []route{
		{method: http.MethodGet, path: "/healthz", summary: "Liveness of this API server and its etcd connection", tag: "meta",
			resp: model.Info{}, status: http.StatusOK, handler: s.healthz},
		{method: http.MethodGet, path: "/openapi.json", summary: "This document", tag: "meta",
			resp: map[string]any{}, status: http.StatusOK, handler: s.openapi},
		get("", "Server and cluster revision", "meta", model.Info{}, s.info),

		get("/cluster", "Ceph cluster health and gateway counts", "ceph", model.Cluster{}, s.getCluster, http.StatusNotImplemented, http.StatusBadGateway),
		get("/pools", "Ceph pools with what the gateways export from each", "ceph", []model.Pool{}, s.listPools, http.StatusNotImplemented, http.StatusBadGateway),
		get("/pools/:pool/images", "RBD images of a pool, exported or not", "ceph", []model.Image{}, s.listImages, nf, http.StatusNotImplemented, http.StatusBadGateway),

		get("/gateways", "Gateways with liveness, applied revision and sessions", "gateways", []model.Gateway{}, s.listGateways),
		get("/gateways/:name", "One gateway", "gateways", model.Gateway{}, s.getGateway, nf),
		write(http.MethodPut, "/gateways/:name", "Create or replace a gateway", "gateways", model.GatewayPut{}, s.putGateway),
		write(http.MethodDelete, "/gateways/:name", "Remove a gateway (refused while a target lists it)", "gateways", nil, s.deleteGateway, nf),

		get("/disks", "Disks (RBD images exported as LUNs)", "disks", []model.Disk{}, s.listDisks),
		get("/disks/:pool/:image", "One disk with its image's state in Ceph", "disks", model.Disk{}, s.getDisk, nf),
		write(http.MethodPut, "/disks/:pool/:image", "Create (size given), import (size absent) or grow a disk", "disks", model.DiskPut{}, s.putDisk, nf, http.StatusCreated, http.StatusNotImplemented, http.StatusBadGateway),
		withQuery(write(http.MethodDelete, "/disks/:pool/:image", "Remove a disk from the configuration, and its image with remove_image=true", "disks", nil, s.deleteDisk, nf, http.StatusNotImplemented, http.StatusBadGateway),
			param{"remove_image", "boolean", "also delete the RBD image (default false: keep it)"}),
		get("/disks/:pool/:image/snapshots", "Snapshots of a disk's image", "disks", []model.Snapshot{}, s.listSnapshots, nf, http.StatusNotImplemented, http.StatusBadGateway),
		withStatus(write(http.MethodPost, "/disks/:pool/:image/snapshots", "Create a snapshot", "disks", model.SnapshotCreate{}, s.createSnapshot, nf, http.StatusNotImplemented, http.StatusBadGateway), http.StatusCreated),
		write(http.MethodDelete, "/disks/:pool/:image/snapshots/:snap", "Delete a snapshot", "disks", nil, s.deleteSnapshot, nf, http.StatusNotImplemented, http.StatusBadGateway),

		get("/targets", "Targets", "targets", []model.Target{}, s.listTargets),
		get("/targets/:iqn", "One target with its LUNs, hosts and groups", "targets", model.Target{}, s.getTarget, nf),
		write(http.MethodPut, "/targets/:iqn", "Create or replace a target's settings", "targets", model.TargetPut{}, s.putTarget),
		write(http.MethodDelete, "/targets/:iqn", "Delete a target with its LUNs, hosts and groups", "targets", nil, s.deleteTarget, nf),
		get("/targets/:iqn/gateways", "Gateways serving a target", "targets", []model.Gateway{}, s.listTargetGateways, nf),
		write(http.MethodPut, "/targets/:iqn/gateways/:name", "Add a gateway to a target (creating the gateway when portals are given)", "targets", model.TargetGatewayPut{}, s.putTargetGateway, nf),
		write(http.MethodDelete, "/targets/:iqn/gateways/:name", "Remove a gateway from a target", "targets", nil, s.deleteTargetGateway, nf),

		get("/targets/:iqn/luns", "LUNs of a target", "luns", []model.LUN{}, s.listLUNs, nf),
		withStatus(write(http.MethodPost, "/targets/:iqn/luns", "Map a disk at the lowest free LUN id (or the id given)", "luns", model.LUNPut{}, s.postLUN, nf, http.StatusOK), http.StatusCreated),
		get("/targets/:iqn/luns/:id", "One LUN", "luns", model.LUN{}, s.getLUN, nf),
		write(http.MethodPut, "/targets/:iqn/luns/:id", "Map a disk at a LUN id", "luns", model.LUNPut{}, s.putLUN, nf),
		write(http.MethodDelete, "/targets/:iqn/luns/:id", "Unmap a LUN (refused while a host or group maps it)", "luns", nil, s.deleteLUN, nf),

		get("/targets/:iqn/hosts", "Hosts (initiators) admitted to a target", "hosts", []model.Host{}, s.listHosts, nf),
		get("/targets/:iqn/hosts/:initiator", "One host", "hosts", model.Host{}, s.getHost, nf),
		write(http.MethodPut, "/targets/:iqn/hosts/:initiator", "Create or replace a host: CHAP, the LUNs it sees (empty: none), allowed addresses", "hosts", model.HostPut{}, s.putHost, nf),
		write(http.MethodDelete, "/targets/:iqn/hosts/:initiator", "Remove a host (refused while a group lists it)", "hosts", nil, s.deleteHost, nf),
		operatorOnly(withQuery(get("/targets/:iqn/hosts/:initiator/connection", "What a host needs to log in to a LUN (os-brick connection properties, with the CHAP secret)", "hosts", model.Connection{}, s.getConnection, nf, http.StatusBadRequest),
			param{"lun", "integer", "the LUN id (default: the host's lowest LUN)"})),

		get("/targets/:iqn/host-groups", "Host groups of a target", "hosts", []model.HostGroup{}, s.listHostGroups, nf),
		get("/targets/:iqn/host-groups/:group", "One host group", "hosts", model.HostGroup{}, s.getHostGroup, nf),
		write(http.MethodPut, "/targets/:iqn/host-groups/:group", "Create or replace a host group", "hosts", model.HostGroupPut{}, s.putHostGroup, nf),
		write(http.MethodDelete, "/targets/:iqn/host-groups/:group", "Delete a host group (its members stay, with no LUNs)", "hosts", nil, s.deleteHostGroup, nf),

		get("/discovery-auth", "CHAP required on discovery sessions", "targets", model.DiscoveryAuth{}, s.getDiscoveryAuth),
		write(http.MethodPut, "/discovery-auth", "Require CHAP on discovery sessions", "targets", model.CHAP{}, s.putDiscoveryAuth),
		write(http.MethodDelete, "/discovery-auth", "Let discovery sessions in without CHAP", "targets", nil, s.deleteDiscoveryAuth),

		get("/settings", "Cluster-wide tuning", "settings", model.Settings{}, s.getSettings),
		write(http.MethodPut, "/settings", "Replace the cluster-wide tuning", "settings", model.Settings{}, s.putSettings),

		withQuery(get("/sessions", "Live iSCSI sessions on every gateway", "sessions", model.Sessions{}, s.listSessions),
			param{"gateway", "string", "only this gateway's"}, param{"target", "string", "only this target's"}, param{"initiator", "string", "only this initiator's"}),

		withQuery(get("/luns/stats", "Rates of every LUN through every gateway over a window (IOPS, MB/s, latency, queue depth, ALUA state)", "stats", model.Stats{}, s.lunStats, http.StatusBadRequest), statsQuery...),
		withQuery(get("/targets/:iqn/stats", "Rates of a target's LUNs through its gateways", "stats", model.Stats{}, s.targetStats, nf), statsQuery...),
		withQuery(get("/gateways/:name/stats", "Rates of a gateway's LUNs and its totals", "stats", model.Stats{}, s.gatewayStats, nf), statsQuery...),
		eventStream(withQuery(get("/events", "Server-sent events: configuration changes, ownership moves, fencing, gateways joining and leaving, each with its etcd revision as id", "events", model.Event{}, s.streamEvents, http.StatusBadRequest), eventsQuery...)),

		withQuery(get("/config/export", "The whole configuration (secrets masked)", "config", model.Export{}, s.exportConfig),
			param{"format", "string", "json (default) or yaml"}),
		withQuery(write(http.MethodPost, "/config/import", "Import a configuration (JSON or YAML, as exported); masked secrets keep the stored ones", "config", model.Export{}, s.importConfig, http.StatusUnsupportedMediaType),
			param{"format", "string", "json or yaml (default: from Content-Type; without one, JSON when the body starts with {, else YAML)"}),

		adminOnly(get("/tokens", "API tokens (never their secrets)", "auth", []model.Token{}, s.listTokens)),
		adminOnly(withStatus(route{method: http.MethodPost, path: "/tokens", summary: "Create a token; the response carries it once", tag: "auth",
			req: model.TokenCreate{}, resp: model.TokenCreated{}, errs: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, handler: s.createToken}, http.StatusCreated)),
		adminOnly(route{method: http.MethodDelete, path: "/tokens/:id", summary: "Revoke a token", tag: "auth",
			resp: map[string]any{}, status: http.StatusOK, errs: []int{nf}, handler: s.revokeToken}),
		adminOnly(withQuery(get("/audit", "The audit log of writes, newest first", "auth", model.Audit{}, s.listAudit),
			param{"limit", "integer", "entries per page (default 100, at most 1000)"}, param{"before", "string", "the next cursor of the previous page"})),
	}
	for i := range rs {
		if strings.Contains(rs[i].path, ":") && !slices.Contains(rs[i].errs, http.StatusBadRequest) {
			rs[i].errs = append(rs[i].errs, http.StatusBadRequest) // a malformed name or id
		}
		if rs[i].role != 0 {
			rs[i].errs = append(rs[i].errs, authErrs...)
		}
	}
	return rs
}

func withQuery(r route, ps ...param) route { r.query = append(r.query, ps...); return r }
func withStatus(r route, status int) route { r.status = status; return r }
func adminOnly(r route) route              { r.role = RoleAdmin; return r }
func eventStream(r route) route            { r.stream, r.headers = true, eventsHeaders; return r }
func operatorOnly(r route) route           { r.role = RoleOperator; return r }
