//go:build pacific

package rbd

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// What the management API shows about the Ceph cluster itself: health and
// pools. Everything comes from monitor commands in JSON; the decoding is in
// pure functions (parseHealth, parsePools) tested on captured replies in
// testdata/cluster.
//
// Pool statistics (stored, used, max_avail) are computed by the ceph-mgr:
// the monitors answer "df" with the last digest the mgr sent them. On a
// cluster whose mgr never ran there is none, and PoolInfo.StatsKnown is
// false; after the mgr died the figures are the last ones it sent.

// ErrBadReply: a monitor answered with JSON this package cannot decode.
var ErrBadReply = errors.New("rbd: unexpected reply from the Ceph monitors")

// Health is the state of the Ceph cluster.
type Health struct {
	FSID string `json:"fsid"`
	// Status is HEALTH_OK, HEALTH_WARN or HEALTH_ERR.
	Status string `json:"status"`
	// Checks are the failing health checks, the most severe first, then
	// by name; never nil.
	Checks []HealthCheck `json:"checks"`
	// Mons is the number of monitors in the monmap, Quorum the names of
	// those in quorum.
	Mons   int      `json:"mons"`
	Quorum []string `json:"quorum"`
	OSDs   int      `json:"osds"`
	OSDsUp int      `json:"osds_up"`
	OSDsIn int      `json:"osds_in"`
	// MgrAvailable: a ceph-mgr is active. Without one, pool statistics
	// are missing or stale.
	MgrAvailable bool `json:"mgr_available"`
}

// HealthCheck is one failing Ceph health check, e.g. OSDMAP_FLAGS.
type HealthCheck struct {
	Name string `json:"name"`
	// Severity is HEALTH_WARN or HEALTH_ERR.
	Severity string `json:"severity"`
	// Summary is the one-line message, e.g. "noout flag(s) set".
	Summary string `json:"summary"`
	// Count is how many things the check is about (PGs, OSDs, ...).
	Count int `json:"count"`
	// Muted: an operator muted the check (ceph health mute).
	Muted bool `json:"muted"`
	// Detail are the detail lines (ceph health detail), e.g. one per PG;
	// the monitors cap them (mon_health_max_detail, default 50).
	Detail []string `json:"detail,omitempty"`
}

// Health status values and check severities.
const (
	HealthOK   = "HEALTH_OK"
	HealthWarn = "HEALTH_WARN"
	HealthErr  = "HEALTH_ERR"
)

// Pool types.
const (
	PoolReplicated = "replicated"
	PoolErasure    = "erasure"
)

// PoolInfo describes a Ceph pool.
type PoolInfo struct {
	Name string `json:"name"`
	ID   int64  `json:"id"`
	// Type is "replicated" or "erasure" (another value only for a pool
	// type Ceph does not have today).
	Type string `json:"type"`
	// Size is the number of copies of a replicated pool, k+m of an
	// erasure-coded one; MinSize the number needed for I/O.
	Size    int `json:"size"`
	MinSize int `json:"min_size"`
	// ECProfile, ECK and ECM: the erasure-code profile of an erasure
	// pool and its data and coding chunk counts (0 if the profile cannot
	// be read).
	ECProfile string `json:"ec_profile,omitempty"`
	ECK       int    `json:"ec_k,omitempty"`
	ECM       int    `json:"ec_m,omitempty"`
	// AllowECOverwrites: an erasure pool accepts partial overwrites, which
	// it needs to be an RBD data pool.
	AllowECOverwrites bool `json:"allow_ec_overwrites"`
	// PGs is pg_num.
	PGs int `json:"pg_num"`
	// Applications are the application tags (rbd, cephfs, rgw, ...),
	// sorted; RBD says whether "rbd" is one of them. Never nil.
	Applications []string `json:"applications"`
	RBD          bool     `json:"rbd"`
	// StatsKnown: the monitors had statistics for the pool (from the
	// mgr); without them the figures below are 0.
	StatsKnown bool `json:"stats_known"`
	// Objects is the number of RADOS objects.
	Objects int64 `json:"objects"`
	// Stored is the bytes of data the clients stored, Used the raw bytes
	// that takes on the OSDs (copies or chunks included).
	Stored int64 `json:"stored"`
	Used   int64 `json:"used"`
	// MaxAvail is how many more bytes the clients can store in the pool
	// before its fullest OSD reaches the full ratio.
	MaxAvail int64 `json:"max_avail"`
}

// Health reports the cluster's health and its monitor and OSD counts.
func (c *Cluster) Health() (Health, error) {
	status, err := c.monQuery(map[string]any{"prefix": "status", "format": "json"})
	if err != nil {
		return Health{}, err
	}
	detail, err := c.monQuery(map[string]any{"prefix": "health", "detail": "detail", "format": "json"})
	if err != nil {
		return Health{}, err
	}
	return parseHealth(status, detail)
}

// Pools describes every pool, sorted by name.
func (c *Cluster) Pools() ([]PoolInfo, error) {
	dump, err := c.monQuery(map[string]any{"prefix": "osd dump", "format": "json"})
	if err != nil {
		return nil, err
	}
	df, err := c.monQuery(map[string]any{"prefix": "df", "format": "json"})
	if err != nil {
		return nil, err
	}
	return parsePools(dump, df)
}

// Pool describes one pool; ErrNotFound if there is no such pool.
// (List returns the images of a pool.)
func (c *Cluster) Pool(name string) (PoolInfo, error) {
	pools, err := c.Pools()
	if err != nil {
		return PoolInfo{}, err
	}
	for _, p := range pools {
		if p.Name == name {
			return p, nil
		}
	}
	return PoolInfo{}, opError("pool info", name, -int(syscall.ENOENT), ctxAdmin)
}

// monQuery sends a read-only JSON command to the monitors and returns
// the reply (through monCommand, bounded by Config.MonOpTimeout).
func (c *Cluster) monQuery(args map[string]any) ([]byte, error) {
	what := fmt.Sprint(args["prefix"])
	cmd, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("rbd: %s: %w", what, err)
	}
	var out []byte
	err = c.monCommand(what, string(cmd), &out)
	return out, err
}

// badReply wraps a decoding failure of the reply to a mon command.
func badReply(cmd string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrBadReply, cmd, err)
}

// The JSON of "status" (pacific and later: osdmap is flat).
type statusReply struct {
	FSID        string   `json:"fsid"`
	QuorumNames []string `json:"quorum_names"`
	Monmap      struct {
		NumMons int `json:"num_mons"`
	} `json:"monmap"`
	Osdmap struct {
		NumOSDs   int `json:"num_osds"`
		NumUpOSDs int `json:"num_up_osds"`
		NumInOSDs int `json:"num_in_osds"`
	} `json:"osdmap"`
	Mgrmap struct {
		Available bool `json:"available"`
	} `json:"mgrmap"`
}

// The JSON of "health detail" (also the "health" member of "status").
type healthReply struct {
	Status string                      `json:"status"`
	Checks map[string]healthCheckReply `json:"checks"`
}

type healthCheckReply struct {
	Severity string `json:"severity"`
	Summary  struct {
		Message string `json:"message"`
		Count   int    `json:"count"`
	} `json:"summary"`
	Detail []struct {
		Message string `json:"message"`
	} `json:"detail"`
	Muted bool `json:"muted"`
}

// parseHealth decodes the replies to "status" and "health detail". The
// health status and the checks come from the latter, so that they agree
// with each other.
func parseHealth(status, detail []byte) (Health, error) {
	var s statusReply
	if err := json.Unmarshal(status, &s); err != nil {
		return Health{}, badReply("status", err)
	}
	var hr healthReply
	if err := json.Unmarshal(detail, &hr); err != nil {
		return Health{}, badReply("health detail", err)
	}
	if s.FSID == "" || hr.Status == "" {
		return Health{}, badReply("status", errors.New("no fsid or health status"))
	}
	h := Health{
		FSID:         s.FSID,
		Status:       hr.Status,
		Checks:       []HealthCheck{},
		Mons:         s.Monmap.NumMons,
		Quorum:       s.QuorumNames,
		OSDs:         s.Osdmap.NumOSDs,
		OSDsUp:       s.Osdmap.NumUpOSDs,
		OSDsIn:       s.Osdmap.NumInOSDs,
		MgrAvailable: s.Mgrmap.Available,
	}
	if h.Quorum == nil {
		h.Quorum = []string{}
	}
	for name, cr := range hr.Checks {
		hc := HealthCheck{
			Name:     name,
			Severity: cr.Severity,
			Summary:  cr.Summary.Message,
			Count:    cr.Summary.Count,
			Muted:    cr.Muted,
		}
		for _, d := range cr.Detail {
			hc.Detail = append(hc.Detail, d.Message)
		}
		h.Checks = append(h.Checks, hc)
	}
	slices.SortFunc(h.Checks, func(a, b HealthCheck) int {
		return cmp.Or(cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)), cmp.Compare(a.Name, b.Name))
	})
	return h, nil
}

func severityRank(s string) int {
	switch s {
	case HealthErr:
		return 2
	case HealthWarn:
		return 1
	}
	return 0
}

// The parts of "osd dump" that describe pools.
type osdDumpReply struct {
	Epoch int64 `json:"epoch"`
	Pools []struct {
		ID                  int64                      `json:"pool"`
		Name                string                     `json:"pool_name"`
		FlagsNames          string                     `json:"flags_names"`
		Type                int                        `json:"type"`
		Size                int                        `json:"size"`
		MinSize             int                        `json:"min_size"`
		PGNum               int                        `json:"pg_num"`
		ErasureCodeProfile  string                     `json:"erasure_code_profile"`
		ApplicationMetadata map[string]json.RawMessage `json:"application_metadata"`
	} `json:"pools"`
	// Profile values are strings, e.g. {"k": "2", "m": "1", ...}.
	ErasureCodeProfiles map[string]map[string]string `json:"erasure_code_profiles"`
}

// The JSON of "df".
type dfReply struct {
	Pools []struct {
		Name  string `json:"name"`
		ID    int64  `json:"id"`
		Stats struct {
			Stored    int64 `json:"stored"`
			Objects   int64 `json:"objects"`
			BytesUsed int64 `json:"bytes_used"`
			MaxAvail  int64 `json:"max_avail"`
		} `json:"stats"`
	} `json:"pools"`
}

// pg_pool_t types (osd_types.h).
const (
	poolTypeReplicated = 1
	poolTypeErasure    = 3
)

// parsePools decodes the replies to "osd dump" and "df" into one PoolInfo
// per pool of the osdmap, sorted by name. Pools missing from df (no mgr
// digest yet, or a pool created since) have StatsKnown false.
func parsePools(osdDump, df []byte) ([]PoolInfo, error) {
	var d osdDumpReply
	if err := json.Unmarshal(osdDump, &d); err != nil {
		return nil, badReply("osd dump", err)
	}
	if d.Epoch == 0 {
		return nil, badReply("osd dump", errors.New("no osdmap epoch"))
	}
	var f dfReply
	if err := json.Unmarshal(df, &f); err != nil {
		return nil, badReply("df", err)
	}
	out := make([]PoolInfo, 0, len(d.Pools))
	for _, p := range d.Pools {
		pi := PoolInfo{
			Name:              p.Name,
			ID:                p.ID,
			Size:              p.Size,
			MinSize:           p.MinSize,
			PGs:               p.PGNum,
			AllowECOverwrites: slices.Contains(strings.Split(p.FlagsNames, ","), "ec_overwrites"),
			Applications:      []string{},
		}
		switch p.Type {
		case poolTypeReplicated:
			pi.Type = PoolReplicated
		case poolTypeErasure:
			pi.Type = PoolErasure
			pi.ECProfile = p.ErasureCodeProfile
			prof := d.ErasureCodeProfiles[p.ErasureCodeProfile]
			pi.ECK, _ = strconv.Atoi(prof["k"])
			pi.ECM, _ = strconv.Atoi(prof["m"])
		default:
			pi.Type = "type-" + strconv.Itoa(p.Type)
		}
		for app := range p.ApplicationMetadata {
			pi.Applications = append(pi.Applications, app)
		}
		slices.Sort(pi.Applications)
		pi.RBD = slices.Contains(pi.Applications, "rbd")
		for _, s := range f.Pools {
			if s.ID == p.ID {
				pi.StatsKnown = true
				pi.Objects, pi.Stored, pi.Used, pi.MaxAvail = s.Stats.Objects, s.Stats.Stored, s.Stats.BytesUsed, s.Stats.MaxAvail
				break
			}
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PoolInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
