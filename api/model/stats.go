package model

import "time"

// Gateway states in statistics.
const (
	// StatsUp: the gateway is live and published its counters.
	StatsUp = "up"
	// StatsDown: the gateway's liveness lease is gone.
	StatsDown = "down"
	// StatsNone: the gateway is live but has published no counters yet
	// (it is starting, or runs an older build).
	StatsNone = "no_stats"
)

// Stats is the answer of GET /luns/stats, /targets/{iqn}/stats and
// /gateways/{name}/stats: the rates of each LUN through each gateway over
// a window, computed from the counters every gateway publishes in etcd.
type Stats struct {
	// Time is when the API computed the rates; Window the window asked
	// for, in seconds (each row says the one it got).
	Time   time.Time `json:"time"`
	Window float64   `json:"window_seconds"`
	// LUNs has one row per LUN and gateway serving it that is up, by
	// target, LUN and gateway.
	LUNs []LUNStats `json:"luns"`
	// Gateways are the gateways concerned, with their totals when up.
	Gateways []GatewayStats `json:"gateways"`
	// Down lists the gateways concerned that are down.
	Down []string `json:"down"`
}

// IORates are what a LUN or a gateway did per second over a window.
type IORates struct {
	// Window is the time the rates span, in seconds: the window asked for
	// rounded to the gateway's publishing interval, shorter when the
	// counters started (LUN mapped, gateway started) within it, 0 when
	// they cannot be computed yet.
	Window float64 `json:"window_seconds"`
	// IOPS counts every command; ReadIOPS and WriteIOPS reads and writes.
	IOPS      float64 `json:"iops"`
	ReadIOPS  float64 `json:"read_iops"`
	WriteIOPS float64 `json:"write_iops"`
	// MB/s (10^6 bytes) read by and written from the initiators.
	ReadMBps  float64 `json:"read_mb_per_s"`
	WriteMBps float64 `json:"write_mb_per_s"`
	// ErrorsPerSec counts failed and aborted commands.
	ErrorsPerSec float64 `json:"errors_per_s"`
	// P50 and P99 are the latency percentiles (arrival to status) of the
	// reads and writes of the window, in milliseconds (0 without any);
	// BackendMean the mean time of their execution in the backend.
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	BackendMeanMs float64 `json:"backend_mean_ms"`
	// QueueDepth is the commands in flight when the counters were read.
	QueueDepth int64 `json:"queue_depth"`
}

// LUNStats is one LUN through one gateway.
type LUNStats struct {
	Target  string `json:"target"`
	LUN     uint64 `json:"lun"`
	Disk    string `json:"disk"`
	Gateway string `json:"gateway"`
	// ALUAState is the gateway's access state of the LUN:
	// active_optimized (the owner), active_non_optimized, transitioning.
	ALUAState string `json:"alua_state"`
	IORates
}

// GatewayStats is a gateway's state and, when up, the rates of
// everything it served (LUNs since unmapped included).
type GatewayStats struct {
	Name string `json:"name"`
	// State is up, down or no_stats.
	State string `json:"state"`
	// Updated is when the gateway read the counters the rates end with.
	Updated *time.Time `json:"updated,omitempty"`
	Totals  *IORates   `json:"totals,omitempty"`
	// LUNsTruncated: the gateway serves more LUNs than it publishes
	// counters for (1024).
	LUNsTruncated bool `json:"luns_truncated,omitempty"`
}
