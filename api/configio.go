package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

// exportVersion is the version of the export document.
const exportVersion = 1

func exportOf(snap *cluster.Snapshot) model.Export {
	out := model.Export{Version: exportVersion, Gateways: []model.ExportGateway{}, Disks: []model.ExportDisk{}, Targets: []model.ExportTarget{}}
	if snap.Settings != (cluster.Settings{}) {
		out.Settings = &model.Settings{Tuning: tuningOut(snap.Settings.Tuning)}
	}
	out.DiscoveryAuth = chapOut(snap.DiscoveryAuth)
	for _, n := range snap.GatewayNames() {
		g := snap.Gateways[n]
		out.Gateways = append(out.Gateways, model.ExportGateway{Name: g.Name, Portals: g.Portals, TPGID: g.TPGID})
	}
	for _, id := range snap.DiskIDs() {
		d := snap.Disks[id]
		out.Disks = append(out.Disks, model.ExportDisk{Pool: d.Pool, Image: d.Image, Size: d.Size, BlockSize: d.BlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
			Serial: d.Serial, WWN: d.WWN, ReadOnly: d.ReadOnly})
	}
	for _, iqn := range snap.TargetIQNs() {
		t := snap.Targets[iqn]
		et := model.ExportTarget{IQN: iqn, Gateways: nonNil(t.Gateways), AllowAnyInitiator: t.AllowAnyInitiator,
			CHAP: chapOut(t.CHAP), LUNs: []model.ExportLUN{}, Hosts: []model.ExportHost{}}
		for _, l := range snap.TargetLUNs(iqn) {
			et.LUNs = append(et.LUNs, model.ExportLUN{ID: l.ID, Disk: l.Disk})
		}
		for _, h := range snap.TargetHosts(iqn) {
			et.Hosts = append(et.Hosts, model.ExportHost{Initiator: h.Initiator, CHAP: chapOut(h.CHAP), LUNs: nonNil(h.LUNs), Addresses: h.Addresses})
		}
		for _, g := range snap.TargetHostGroups(iqn) {
			et.HostGroups = append(et.HostGroups, model.ExportHostGroup{Name: g.Name, Members: nonNil(g.Members), LUNs: nonNil(g.LUNs)})
		}
		out.Targets = append(out.Targets, et)
	}
	return out
}

func (s *Server) exportConfig(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	doc := exportOf(snap)
	c.Header("ETag", etag(snap.Rev))
	switch c.DefaultQuery("format", "json") {
	case "json":
		s.ok(c, http.StatusOK, doc)
	case "yaml":
		b, err := yaml.Marshal(doc)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusOK, "application/yaml", b)
	default:
		s.fail(c, invalidf("format=%q: expected json or yaml", c.Query("format")))
	}
}

// importConfig merges a document into the configuration in one
// transaction: an export of this API, or a standalone gateway's
// configuration file (its RBD disks, targets, LUNs and ACLs; ?gateway=
// names the cluster gateway that takes over its portals).
func (s *Server) importConfig(c *gin.Context) {
	raw, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	isYAML, err := importFormat(c, raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	doc, err := parseImport(raw, isYAML, c.Query("gateway"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.commit(c, change{build: func(snap *cluster.Snapshot) ([]cluster.Op, error) { return importOps(snap, doc) }})
}

// importFormat reports whether the import body is YAML: as ?format= says,
// else as the Content-Type says; a body sent without a type of its own
// (none, curl's default form encoding, text/plain) is JSON when it starts
// like a JSON object and YAML otherwise, so that `curl --data-binary
// @gateway.yaml` without a header works.
func importFormat(c *gin.Context, raw []byte) (bool, error) {
	switch f := c.Query("format"); f {
	case "yaml":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, invalidf("format=%q: expected json or yaml", f)
	}
	sniff := func() bool {
		b := bytes.TrimLeft(raw, " \t\r\n")
		return len(b) > 0 && b[0] != '{'
	}
	ct := c.GetHeader("Content-Type")
	if ct == "" {
		return sniff(), nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, newError(http.StatusUnsupportedMediaType, model.CodeUnsupportedMedia, "Content-Type %q cannot be parsed", ct)
	}
	switch {
	case strings.Contains(mt, "yaml"):
		return true, nil
	case mt == "application/json":
		return false, nil
	case mt == "application/x-www-form-urlencoded", mt == "text/plain":
		return sniff(), nil
	}
	return false, newError(http.StatusUnsupportedMediaType, model.CodeUnsupportedMedia, "Content-Type %s: send application/json or application/yaml", mt)
}

// parseImport reads an export document, or a standalone configuration
// file converted to one.
func parseImport(raw []byte, isYAML bool, gateway string) (model.Export, error) {
	var probe map[string]any
	if isYAML {
		if err := yaml.Unmarshal(raw, &probe); err != nil {
			return model.Export{}, newError(http.StatusBadRequest, model.CodeMalformed, "malformed YAML: %v", err)
		}
	} else if err := json.Unmarshal(raw, &probe); err != nil {
		return model.Export{}, newError(http.StatusBadRequest, model.CodeMalformed, "%s", describeJSONError(raw, err))
	}
	if _, standalone := probe["portals"]; standalone {
		cfg, err := config.Parse(raw, !isYAML)
		if err != nil {
			return model.Export{}, invalidf("standalone configuration: %v", err)
		}
		return fromStandalone(cfg, gateway)
	}
	var doc model.Export
	if isYAML {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return doc, newError(http.StatusBadRequest, model.CodeMalformed, "export document: %s", describeYAMLError(err))
		}
	} else if err := decodeStrict(raw, &doc); err != nil {
		return doc, err
	}
	if doc.Version != exportVersion {
		return doc, invalidf("export document version %d: this build reads version %d", doc.Version, exportVersion)
	}
	return doc, nil
}

// fromStandalone converts a standalone gateway's file. Only RBD disks can
// move into a cluster; the portals go to the named gateway.
func fromStandalone(cfg *config.Config, gateway string) (model.Export, error) {
	if gateway == "" {
		return model.Export{}, invalidf("a standalone configuration needs ?gateway=NAME: the cluster gateway that takes over its portals %v", cfg.Portals)
	}
	doc := model.Export{Version: exportVersion}
	doc.Gateways = []model.ExportGateway{{Name: gateway, Portals: cfg.Portals}}
	if cfg.DiscoveryAuth != nil {
		doc.DiscoveryAuth = chapModel(cfg.DiscoveryAuth)
	}
	names := map[string]string{}
	for _, d := range cfg.Disks {
		if d.Backend != "rbd" {
			return doc, invalidf("disk %q has backend %q: only rbd disks can move into a cluster", d.Name, d.Backend)
		}
		names[d.Name] = cluster.DiskID(d.Pool, d.Image)
		doc.Disks = append(doc.Disks, model.ExportDisk{Pool: d.Pool, Image: d.Image, Size: d.Size, BlockSize: d.BlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
			Serial: d.Serial, WWN: d.WWN, ReadOnly: d.ReadOnly})
	}
	for _, t := range cfg.Targets {
		et := model.ExportTarget{IQN: t.IQN, Gateways: []string{gateway}, AllowAnyInitiator: t.AllowAnyInitiator, CHAP: chapModel(t.CHAP)}
		var all []uint64
		for _, l := range t.LUNs {
			et.LUNs = append(et.LUNs, model.ExportLUN{ID: l.ID, Disk: names[l.Disk]})
			all = append(all, l.ID)
		}
		for _, a := range t.ACLs {
			// In a standalone file an ACL without a list sees every LUN;
			// in the cluster the list is explicit.
			luns := all
			if ids, every := a.View(); !every {
				luns = ids
			}
			et.Hosts = append(et.Hosts, model.ExportHost{Initiator: a.InitiatorIQN, CHAP: chapModel(a.CHAP), LUNs: nonNil(luns), Addresses: a.Addresses})
		}
		doc.Targets = append(doc.Targets, et)
	}
	return doc, nil
}

func chapModel(c *config.CHAP) *model.CHAP {
	if c == nil {
		return nil
	}
	return &model.CHAP{User: c.User, Secret: c.Secret, MutualUser: c.MutualUser, MutualSecret: c.MutualSecret}
}

// importOps turns a document into puts, in dependency order. Disks whose
// size differs from the stored one only grow.
func importOps(snap *cluster.Snapshot, doc model.Export) ([]cluster.Op, error) {
	var ops []cluster.Op
	if doc.Settings != nil {
		ops = append(ops, cluster.PutSettings(cluster.Settings{Tuning: tuningIn(doc.Settings.Tuning)}))
	}
	if doc.DiscoveryAuth != nil {
		chap, err := chapIn(doc.DiscoveryAuth, snap.DiscoveryAuth, "discovery_auth")
		if err != nil {
			return nil, err
		}
		ops = append(ops, cluster.PutDiscoveryAuth(*chap))
	}
	for _, g := range doc.Gateways {
		ops = append(ops, cluster.PutGateway(cluster.Gateway{Name: g.Name, Portals: g.Portals, TPGID: g.TPGID}))
	}
	for _, d := range doc.Disks {
		ops = append(ops, cluster.PutDisk(cluster.Disk{Pool: d.Pool, Image: d.Image, Size: d.Size, BlockSize: d.BlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
			Serial: d.Serial, WWN: d.WWN, ReadOnly: d.ReadOnly}))
	}
	for _, t := range doc.Targets {
		iqn := cluster.CanonicalISCSIName(t.IQN)
		chap, err := chapIn(t.CHAP, snap.Targets[iqn].CHAP, "target "+iqn+" chap")
		if err != nil {
			return nil, err
		}
		ops = append(ops, cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: t.Gateways, AllowAnyInitiator: t.AllowAnyInitiator, CHAP: chap}))
		for _, l := range t.LUNs {
			ops = append(ops, cluster.PutLUN(cluster.LUN{Target: iqn, ID: l.ID, Disk: l.Disk}))
		}
		for _, h := range t.Hosts {
			ini := cluster.CanonicalISCSIName(h.Initiator)
			hc, err := chapIn(h.CHAP, snap.Hosts[iqn][ini].CHAP, "host "+ini+" chap")
			if err != nil {
				return nil, err
			}
			host := cluster.Host{Target: iqn, Initiator: ini, CHAP: hc, LUNs: nonNil(h.LUNs)}
			if err := setHostAddresses(&host, h.Addresses); err != nil {
				return nil, err
			}
			ops = append(ops, cluster.PutHost(host))
		}
		for _, g := range t.HostGroups {
			ops = append(ops, cluster.PutHostGroup(cluster.HostGroup{Target: iqn, Name: g.Name, Members: g.Members, LUNs: nonNil(g.LUNs)}))
		}
	}
	return ops, nil
}

var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	yamlWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
)

// describeYAMLError says what yaml.v3's decoding errors say in the words
// of the JSON ones (unknown field "x", expected an integer), one line,
// without Go type names.
func describeYAMLError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
			msgs = append(msgs, fmt.Sprintf("line %s: unknown field %q", m[1], m[2]))
		} else if m := yamlWrongType.FindStringSubmatch(e); m != nil {
			kind := m[4]
			switch {
			case strings.HasPrefix(kind, "[]"):
				kind = "slice"
			case strings.HasPrefix(kind, "map["), strings.Contains(kind, "."):
				kind = "struct"
			}
			got := strconv.Quote(m[3])
			switch m[2] {
			case "map":
				got = "an object"
			case "seq":
				got = "an array"
			}
			msgs = append(msgs, fmt.Sprintf("line %s: expected %s, got %s", m[1], jsonKind(kind), got))
		} else {
			msgs = append(msgs, e)
		}
	}
	return strings.Join(msgs, "; ")
}
