package api

import (
	"cmp"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// Statistics: every gateway publishes its counters in etcd (package
// gateway/stats); the rates are computed here from the newest record and
// the one a window earlier, so any gateway's API reports every gateway
// without asking the others, and a gateway that is down is reported as
// down.

// Windows of the statistics.
const (
	defaultStatsWindow = 5 * time.Second
	minStatsWindow     = time.Second
	maxStatsWindow     = stats.MaxWindow
)

var statsQuery = []param{{"window", "string", "the window the rates span, e.g. 5s, 1m (default 5s, 1s to 5m; counters are published every 2s)"}}

// statsWindow reads ?window= (a duration, or seconds).
func statsWindow(c *gin.Context) (time.Duration, error) {
	v := c.Query("window")
	if v == "" {
		return defaultStatsWindow, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0, invalidf("window %q: not a duration (5s, 1m)", v)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < minStatsWindow || d > maxStatsWindow {
		return 0, invalidf("window %s: must be between %s and %s", d, minStatsWindow, maxStatsWindow)
	}
	return d, nil
}

// statsScope says which rows a statistics route reports.
type statsScope struct {
	// target, when set, keeps the LUNs of that target only.
	target string
	// gateways, when not nil, are the gateways reported.
	gateways []string
}

func (s *Server) lunStats(c *gin.Context) { s.serveStats(c, statsScope{}) }

func (s *Server) targetStats(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	t, ok := s.target(c, snap)
	if !ok {
		return
	}
	s.serveStats(c, statsScope{target: t.IQN, gateways: slices.Clone(t.Gateways)})
}

func (s *Server) gatewayStats(c *gin.Context) {
	s.serveStats(c, statsScope{gateways: []string{c.Param("name")}})
}

func (s *Server) serveStats(c *gin.Context, scope statsScope) {
	if s.opts.Stats == nil {
		s.fail(c, newError(http.StatusServiceUnavailable, model.CodeUnavailable, "gateway %s serves no statistics", s.opts.Gateway))
		return
	}
	window, err := statsWindow(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	st, err := s.opts.Gateways.Status(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	wins, err := s.opts.Stats.Windows(ctx, window)
	if err != nil {
		s.fail(c, err)
		return
	}
	live := map[string]bool{}
	for _, g := range st {
		live[g.Name] = g.Live
	}
	for name := range wins {
		if _, known := live[name]; !known {
			live[name] = true // registered after the status was read
		}
	}
	names := slices.Sorted(maps.Keys(live))
	if scope.gateways != nil {
		if len(scope.gateways) == 1 && scope.target == "" {
			if _, known := live[scope.gateways[0]]; !known {
				s.fail(c, notFoundf("gateway %q does not exist", scope.gateways[0]))
				return
			}
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(scope.gateways, n) })
	}
	out := model.Stats{Time: time.Now().UTC(), Window: window.Seconds(), LUNs: []model.LUNStats{},
		Gateways: []model.GatewayStats{}, Down: []string{}}
	for _, name := range names {
		w, published := wins[name]
		g := model.GatewayStats{Name: name}
		switch {
		case !live[name]:
			// The record goes with the lease; one read just before it
			// ended is not reported either.
			g.State = model.StatsDown
			out.Down = append(out.Down, name)
		case !published:
			g.State = model.StatsNone
		default:
			g.State = model.StatsUp
			updated := w.AsOf.UTC()
			totals := ioRates(w.GatewayRates())
			g.Updated, g.Totals, g.LUNsTruncated = &updated, &totals, w.Cur.LUNsTruncated
			for i, r := range w.LUNRates() {
				l := w.Cur.LUNs[i]
				if scope.target != "" && l.Target != scope.target {
					continue
				}
				out.LUNs = append(out.LUNs, model.LUNStats{Target: l.Target, LUN: l.LUN, Disk: l.Disk, Gateway: name,
					ALUAState: l.ALUA, IORates: ioRates(r)})
			}
		}
		out.Gateways = append(out.Gateways, g)
	}
	slices.SortFunc(out.LUNs, func(a, b model.LUNStats) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.LUN, b.LUN), cmp.Compare(a.Gateway, b.Gateway))
	})
	s.ok(c, http.StatusOK, out)
}

// ioRates converts rates for a response, rounded to what is worth
// showing.
func ioRates(r stats.Rates) model.IORates {
	ms := func(d time.Duration) float64 { return round(float64(d)/1e6, 4) }
	return model.IORates{
		Window:        round(r.Window.Seconds(), 3),
		IOPS:          round(r.IOPS, 1),
		ReadIOPS:      round(r.ReadIOPS, 1),
		WriteIOPS:     round(r.WriteIOPS, 1),
		ReadMBps:      round(r.ReadBytesPS/1e6, 3),
		WriteMBps:     round(r.WrittenBytesPS/1e6, 3),
		ErrorsPerSec:  round(r.ErrorsPS, 2),
		P50Ms:         ms(r.P50),
		P99Ms:         ms(r.P99),
		BackendMeanMs: ms(r.BackendMean),
		QueueDepth:    r.QueueDepth,
	}
}

func round(x float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(x*p) / p
}
