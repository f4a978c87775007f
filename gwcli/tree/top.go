package tree

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

// top: the rates of each LUN through each gateway (GET /luns/stats, or
// the target's), as a live table refreshed every interval on a terminal
// (keys sort it, q leaves), or as count snapshots for scripts.

// Sort keys of top: numbers sort largest first, names A to Z.
var topSortKeys = []string{"iops", "mbps", "read", "write", "p50", "p99", "qd", "errors", "lun", "disk", "gateway"}

// topKeys are the keys of the live view that sort by a column.
var topKeys = map[byte]string{'i': "iops", 'm': "mbps", 'R': "read", 'W': "write", '5': "p50", 'p': "p99",
	'd': "qd", 'e': "errors", 'l': "lun", 'n': "disk", 'g': "gateway"}

const topHelp = "i iops  m MB/s  R/W reads/writes  p p99  5 p50  d queue  e errors  l lun  n disk  g gateway  r reverse  q quit"

func topCommand() *Command {
	return &Command{Name: "top", Summary: "live IOPS, MB/s, p50/p99 latency and queue depth of each LUN through each gateway",
		Usage: "top [sort=<key>] [count=<n>] [interval=1s] [window=5s] [gateway=<name>]",
		Params: []Param{
			{Name: "sort", Keyword: true, Positional: true, Kind: VEnum, Enum: topSortKeys, Desc: "column to sort by (default iops)"},
			kw("count", VCount, "print this many snapshots, one each interval, and stop (gwcli -n N)"),
			kw("interval", VText, "time between snapshots, e.g. 1s, 500ms (default 1s)"),
			kw("window", VText, "time the rates span, 1s to 5m (default 5s; counters are published every 2s)"),
			kw("gateway", VGateway, "only the LUNs through this gateway"),
		},
		Run: runTop}
}

// topOptions are top's parsed arguments.
type topOptions struct {
	sort     string
	reverse  bool
	count    int // 0: until stopped
	interval time.Duration
	filter   client.StatsFilter
	gateway  string // rows of this gateway only
	disk     string // rows of this disk only
}

func parseTop(at Path, a Args) (topOptions, error) {
	o := topOptions{sort: "iops", interval: time.Second}
	if a.Has("sort") {
		o.sort = a["sort"]
	}
	if a.Has("count") {
		o.count, _ = strconv.Atoi(a["count"])
	}
	if a.Has("interval") {
		d, err := time.ParseDuration(a["interval"])
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return o, usagef("top: interval %q: expected a duration from 100ms to 1h, e.g. 1s", a["interval"])
		}
		o.interval = d
	}
	if a.Has("window") {
		d, err := time.ParseDuration(a["window"])
		if err != nil || d < time.Second || d > 5*time.Minute {
			return o, usagef("top: window %q: expected a duration from 1s to 5m, e.g. 10s", a["window"])
		}
		o.filter.Window = d
	}
	o.gateway = a["gateway"]
	o.filter.Target = at.Target
	if o.filter.Target == "" {
		o.filter.Gateway = o.gateway
	}
	switch at.Kind {
	case KDisk, KTDisk, KGroupDisk:
		o.disk = at.Disk()
	}
	return o, nil
}

func runTop(ctx context.Context, e *Env, at Path, a Args) error {
	o, err := parseTop(at, a)
	if err != nil {
		return err
	}
	if o.count == 0 && !e.structured() {
		if t, ok := openTopTerm(e.Out); ok {
			return e.topLive(ctx, t, o)
		}
	}
	return e.topBatch(ctx, o)
}

// topSnapshot reads the stats and keeps, sorted, the rows asked for.
func (e *Env) topSnapshot(ctx context.Context, o topOptions) (model.Stats, error) {
	st, err := e.Client.Stats(ctx, o.filter)
	if err != nil {
		return st, err
	}
	rows := st.LUNs[:0]
	for _, l := range st.LUNs {
		if (o.gateway == "" || l.Gateway == o.gateway) && (o.disk == "" || l.Disk == o.disk) {
			rows = append(rows, l)
		}
	}
	if rows == nil {
		rows = []model.LUNStats{}
	}
	st.LUNs = rows
	sortTop(st.LUNs, o.sort, o.reverse)
	return st, nil
}

// topBatch prints count snapshots (until ctx ends when 0), one each
// interval: tables, or the API's documents with -o json|yaml.
func (e *Env) topBatch(ctx context.Context, o topOptions) error {
	for n := 0; o.count == 0 || n < o.count; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.interval):
			}
		}
		st, err := e.topSnapshot(ctx, o)
		if err != nil {
			if ctx.Err() != nil && n > 0 {
				return nil
			}
			return err
		}
		switch e.Format {
		case FormatJSON:
			err = e.emit(st)
		case FormatYAML:
			if n > 0 {
				fmt.Fprintln(e.Out, "---")
			}
			err = e.emit(st)
		default:
			if n > 0 {
				fmt.Fprintln(e.Out)
			}
			for _, l := range renderTop(st, o, 0, 0, "") {
				fmt.Fprintln(e.Out, l)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// topTerm is the terminal of the live view: keys typed, its size, and
// putting it back as it was.
type topTerm interface {
	Keys() <-chan []byte
	Size() (w, h int)
	Restore()
}

// topLive draws the table on the terminal every interval until q, Ctrl-C
// (SIGINT) or ctx ends; it puts the terminal back on every way out.
func (e *Env) topLive(ctx context.Context, t topTerm, o topOptions) (err error) {
	defer t.Restore()
	defer func() {
		if p := recover(); p != nil {
			t.Restore()
			panic(p)
		}
	}()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var st model.Stats
	var fetchErr error
	have := false
	type result struct {
		st  model.Stats
		err error
	}
	results := make(chan result, 1)
	fetch := func() {
		go func() {
			s, err := e.topSnapshot(ctx, o)
			results <- result{s, err}
		}()
	}
	draw := func() {
		w, h := t.Size()
		status := ""
		if fetchErr != nil {
			status = "error: " + strings.Join(strings.Fields(fetchErr.Error()), " ")
		}
		var lines []string
		if have || fetchErr != nil {
			lines = renderTop(st, o, w, h, status)
		} else {
			lines = []string{"gwcli top: reading " + e.Client.URL() + "/luns/stats ..."}
		}
		var b strings.Builder
		b.WriteString("\x1b[H")
		for i, l := range lines {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString(l)
			b.WriteString("\x1b[K")
		}
		b.WriteString("\x1b[J")
		io.WriteString(e.Out, b.String())
	}
	draw()
	fetch()
	inFlight := true
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			if s == syscall.SIGINT {
				return nil
			}
			return fmt.Errorf("top: %v", s)
		case r := <-results:
			inFlight = false
			if r.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fetchErr = r.err
			} else {
				st, fetchErr, have = r.st, nil, true
			}
			draw()
		case <-tick.C:
			if !inFlight {
				inFlight = true
				fetch()
			}
		case k, ok := <-t.Keys():
			if !ok {
				return nil
			}
			if len(k) == 0 || k[0] == 0x1b {
				continue // an escape sequence (arrows, function keys)
			}
			for _, c := range k {
				switch {
				case c == 'q' || c == 'Q' || c == 3 || c == 4:
					return nil
				case c == 'r':
					o.reverse = !o.reverse
				case topKeys[c] != "":
					if o.sort != topKeys[c] {
						o.sort, o.reverse = topKeys[c], false
					}
				}
			}
			sortTop(st.LUNs, o.sort, o.reverse)
			draw()
		}
	}
}

// sortTop sorts rows by key: numbers largest first, names A to Z; ties by
// target, LUN and gateway.
func sortTop(rows []model.LUNStats, key string, reverse bool) {
	num := func(l model.LUNStats) (float64, bool) {
		switch key {
		case "iops":
			return l.IOPS, true
		case "mbps":
			return l.ReadMBps + l.WriteMBps, true
		case "read":
			return l.ReadIOPS, true
		case "write":
			return l.WriteIOPS, true
		case "p50":
			return l.P50Ms, true
		case "p99":
			return l.P99Ms, true
		case "qd":
			return float64(l.QueueDepth), true
		case "errors":
			return l.ErrorsPerSec, true
		}
		return 0, false
	}
	natural := func(a, b model.LUNStats) int {
		switch {
		case a.Target != b.Target:
			return strings.Compare(a.Target, b.Target)
		case a.LUN != b.LUN:
			if a.LUN < b.LUN {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Gateway, b.Gateway)
	}
	cmp := func(a, b model.LUNStats) int {
		if x, ok := num(a); ok {
			y, _ := num(b)
			switch {
			case x > y:
				return -1
			case x < y:
				return 1
			}
			return natural(a, b)
		}
		switch key {
		case "disk":
			if c := strings.Compare(a.Disk, b.Disk); c != 0 {
				return c
			}
		case "gateway":
			if c := strings.Compare(a.Gateway, b.Gateway); c != 0 {
				return c
			}
		}
		return natural(a, b)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		c := cmp(rows[i], rows[j])
		if reverse {
			return c > 0
		}
		return c < 0
	})
}

// renderTop is a snapshot as lines: a header (time, window, gateways,
// totals), then one row per LUN and gateway. With width and height (the
// live view) lines are cut to the width, rows to the height, and the
// header shows the keys.
func renderTop(st model.Stats, o topOptions, width, height int, status string) []string {
	when := st.Time.Local().Format("15:04:05")
	if st.Time.IsZero() {
		when = "--:--:--"
	}
	var up, other []string
	for _, g := range st.Gateways {
		if g.State == model.StatsUp {
			up = append(up, g.Name)
		} else {
			other = append(other, g.Name+" "+strings.ReplaceAll(g.State, "_", " "))
		}
	}
	gws := fmt.Sprintf("gateways up: %s", joinOr(up, "none"))
	if len(other) > 0 {
		gws += "; " + strings.Join(other, ", ")
	}
	order := o.sort
	if o.reverse {
		order += " (reversed)"
	}
	var iops, mbps float64
	var qd int64
	targets := map[string]bool{}
	for _, l := range st.LUNs {
		iops += l.IOPS
		mbps += l.ReadMBps + l.WriteMBps
		qd += l.QueueDepth
		targets[l.Target] = true
	}
	lines := []string{
		fmt.Sprintf("gwcli top - %s  window %s  sort %s  %s", when, formatSeconds(st.Window), order, gws),
		fmt.Sprintf("LUNs %d: %s IOPS, %s MB/s, queue depth %d", len(st.LUNs), formatRate(iops), formatMBps(mbps), qd),
	}
	if len(targets) == 1 {
		for t := range targets {
			lines[1] += ", target " + t
		}
	}
	if width > 0 {
		lines = append(lines, "keys: "+topHelp)
	}
	if status != "" {
		lines = append(lines, status)
	}
	lines = append(lines, "")
	header := []string{"LUN", "DISK", "GATEWAY", "ALUA", "IOPS", "READ/s", "WRITE/s", "MB/s", "P50 ms", "P99 ms", "QD", "ERR/s"}
	showTarget := len(targets) > 1
	if showTarget {
		header = append([]string{"TARGET"}, header...)
	}
	rows := make([][]string, 0, len(st.LUNs))
	for _, l := range st.LUNs {
		r := []string{strconv.FormatUint(l.LUN, 10), l.Disk, l.Gateway, aluaShort(l.ALUAState),
			formatRate(l.IOPS), formatRate(l.ReadIOPS), formatRate(l.WriteIOPS), formatMBps(l.ReadMBps + l.WriteMBps),
			formatMs(l.P50Ms), formatMs(l.P99Ms), strconv.FormatInt(l.QueueDepth, 10), formatRate(l.ErrorsPerSec)}
		if showTarget {
			r = append([]string{l.Target}, r...)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		lines = append(lines, "no LUNs")
	} else {
		// Names left, numbers right.
		left := 4
		if showTarget {
			left = 5
		}
		lines = append(lines, alignTable(header, rows, left)...)
	}
	if height > 0 && len(lines) > height {
		hidden := len(lines) - height + 1
		lines = append(lines[:height-1], fmt.Sprintf("(%d more rows)", hidden))
	}
	if width > 0 {
		for i, l := range lines {
			if r := []rune(l); len(r) > width {
				lines[i] = string(r[:width])
			}
		}
	}
	return lines
}

// alignTable lays out a table: the first left columns left-aligned, the
// others right-aligned, two spaces apart.
func alignTable(header []string, rows [][]string, left int) []string {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	out := []string{line(header)}
	for _, r := range rows {
		out = append(out, line(r))
	}
	return out
}

func aluaShort(s string) string {
	switch s {
	case "active_optimized":
		return "AO"
	case "active_non_optimized":
		return "ANO"
	case "transitioning":
		return "T"
	case "standby":
		return "S"
	case "unavailable":
		return "U"
	case "":
		return "-"
	}
	return s
}

// formatRate prints a per-second rate: one decimal under 10, whole
// numbers up to a million, then k and M.
func formatRate(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v < 1e6:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
}

// formatMBps prints MB/s (10^6 bytes) with two decimals under 10, one
// under 1000.
func formatMBps(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

// formatMs prints a latency in milliseconds with three significant
// digits ("-" without reads or writes in the window).
func formatMs(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "-"
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

func formatSeconds(s float64) string {
	if s <= 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}
