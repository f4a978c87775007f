package metrics

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "rbdgw"

// Collector is a prometheus.Collector that reads a Registry when scraped:
// the I/O path only touches the Registry's atomics, never client_golang.
type Collector struct {
	reg *Registry

	gwInfo, gwStart, gwCommands, gwReadBytes, gwWrittenBytes, gwErrors *prometheus.Desc
	gwLatency, gwBackend, gwInFlight, gwSessions                       *prometheus.Desc

	lunInfo, lunCommands, lunReadBytes, lunWrittenBytes, lunErrors *prometheus.Desc
	lunLatency, lunBackend, lunInFlight, lunALUA                   *prometheus.Desc

	ownerChanges, takeovers, fenced, fenceErrors, writeStalls *prometheus.Desc

	sessCommands, sessErrors, sessReadBytes, sessWrittenBytes, sessLogin *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// lunLabels identify a LUN.
var lunLabels = []string{"target", "lun", "disk", "pool", "image"}

// NewCollector returns the collector of reg.
func NewCollector(reg *Registry) *Collector {
	gw := prometheus.Labels{"gateway": reg.Gateway()}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, gw)
	}
	lun := func(name, help string, extra ...string) *prometheus.Desc {
		return d(name, help, append(append([]string(nil), lunLabels...), extra...)...)
	}
	sess := []string{"target", "initiator", "isid"}
	return &Collector{
		reg: reg,

		gwInfo:         d("gateway_info", "Always 1; the labels name the gateway and its version.", "version"),
		gwStart:        d("gateway_start_time_seconds", "When the gateway's counters started, as a Unix time."),
		gwCommands:     d("gateway_commands_total", "SCSI commands answered by the gateway, by class (read, write, flush, other).", "op"),
		gwReadBytes:    d("gateway_read_bytes_total", "Data-In bytes sent to initiators."),
		gwWrittenBytes: d("gateway_written_bytes_total", "Data-Out bytes received from initiators."),
		gwErrors:       d("gateway_errors_total", "Commands that failed: CHECK CONDITION by sense key, other statuses with sense_key=\"none\".", "status", "sense_key"),
		gwLatency:      d("gateway_command_duration_seconds", "Time from a command's arrival to its status, by class.", "op"),
		gwBackend:      d("gateway_backend_duration_seconds", "Time commands spent executing in the device server and the image, by class.", "op"),
		gwInFlight:     d("gateway_commands_in_flight", "Commands arrived and not answered yet."),
		gwSessions:     d("gateway_sessions", "Logged-in iSCSI sessions, by target.", "target"),

		lunInfo:         lun("lun_info", "Always 1; the labels describe the LUN and its backend.", "backend"),
		lunCommands:     lun("lun_commands_total", "SCSI commands answered for the LUN, by class (read, write, flush, other).", "op"),
		lunReadBytes:    lun("lun_read_bytes_total", "Data-In bytes sent to initiators from the LUN."),
		lunWrittenBytes: lun("lun_written_bytes_total", "Data-Out bytes received from initiators for the LUN."),
		lunErrors:       lun("lun_errors_total", "Commands of the LUN that failed: CHECK CONDITION by sense key, other statuses with sense_key=\"none\".", "status", "sense_key"),
		lunLatency:      lun("lun_command_duration_seconds", "Time from a command's arrival to its status, by class.", "op"),
		lunBackend:      lun("lun_backend_duration_seconds", "Time commands spent executing in the device server and the image, by class.", "op"),
		lunInFlight:     lun("lun_commands_in_flight", "Commands of the LUN arrived and not answered yet (queue depth)."),
		lunALUA:         lun("lun_alua_state", "This gateway's asymmetric access state for the LUN: 1 for the current state, 0 for the others.", "state"),

		ownerChanges: d("alua_owner_changes_total", "Changes of a disk's owner gateway seen by this gateway.", "disk"),
		takeovers:    d("alua_takeovers_total", "Takeovers of a disk attempted by this gateway, by result (claimed, conflict, failed).", "disk", "result"),
		fenced:       d("alua_fenced_clients_total", "Ceph clients holding a disk's lock that this gateway fenced (OSD blocklist).", "disk"),
		fenceErrors:  d("alua_fence_errors_total", "Fencing attempts of this gateway that failed.", "disk"),
		writeStalls:  d("alua_write_stalls_total", "Writes that waited longer than the stall timeout for another client's lock.", "disk"),

		sessCommands:     d("session_commands_total", "SCSI commands answered in the session.", sess...),
		sessErrors:       d("session_errors_total", "Commands of the session that failed.", sess...),
		sessReadBytes:    d("session_read_bytes_total", "Data-In bytes sent in the session.", sess...),
		sessWrittenBytes: d("session_written_bytes_total", "Data-Out bytes received in the session.", sess...),
		sessLogin:        d("session_login_time_seconds", "When the session logged in, as a Unix time.", sess...),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.gwInfo, c.gwStart, c.gwCommands, c.gwReadBytes, c.gwWrittenBytes, c.gwErrors,
		c.gwLatency, c.gwBackend, c.gwInFlight, c.gwSessions,
		c.lunInfo, c.lunCommands, c.lunReadBytes, c.lunWrittenBytes, c.lunErrors,
		c.lunLatency, c.lunBackend, c.lunInFlight, c.lunALUA,
		c.ownerChanges, c.takeovers, c.fenced, c.fenceErrors, c.writeStalls,
		c.sessCommands, c.sessErrors, c.sessReadBytes, c.sessWrittenBytes, c.sessLogin,
	} {
		ch <- d
	}
}

// histogramOps are the classes with latency histograms.
var histogramOps = [...]Op{OpRead, OpWrite, OpFlush, OpOther}

// alwaysReportedStates are reported (0 or 1) for every LUN, so that an
// alert can test one of them; another current state is added as 1.
var alwaysReportedStates = [...]string{"active_optimized", "active_non_optimized", "transitioning"}

// Collect reads the registry and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.reg.Snapshot()
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue

	ch <- prometheus.MustNewConstMetric(c.gwInfo, gauge, 1, s.Version)
	ch <- prometheus.MustNewConstMetric(c.gwStart, gauge, float64(s.Start.UnixNano())/1e9)
	c.counters(ch, &s.Totals, c.gwCommands, c.gwReadBytes, c.gwWrittenBytes, c.gwErrors, c.gwLatency, c.gwBackend, c.gwInFlight)
	perTarget := map[string]int{}
	for _, ss := range s.Sessions {
		perTarget[ss.Target]++
	}
	for t, n := range perTarget {
		ch <- prometheus.MustNewConstMetric(c.gwSessions, gauge, float64(n), t)
	}

	for i := range s.LUNs {
		l := &s.LUNs[i]
		labels := []string{l.Target, strconv.FormatUint(l.LUN, 10), l.Disk, l.Pool, l.Image}
		ch <- prometheus.MustNewConstMetric(c.lunInfo, gauge, 1, append(labels, l.Backend)...)
		c.counters(ch, &l.Counters, c.lunCommands, c.lunReadBytes, c.lunWrittenBytes, c.lunErrors, c.lunLatency, c.lunBackend, c.lunInFlight, labels...)
		current := false
		for _, st := range alwaysReportedStates {
			v := 0.0
			if st == l.ALUAState {
				v, current = 1, true
			}
			ch <- prometheus.MustNewConstMetric(c.lunALUA, gauge, v, append(labels, st)...)
		}
		if !current {
			ch <- prometheus.MustNewConstMetric(c.lunALUA, gauge, 1, append(labels, l.ALUAState)...)
		}
	}

	for _, d := range s.Disks {
		ch <- prometheus.MustNewConstMetric(c.ownerChanges, counter, float64(d.OwnerChanges), d.Disk)
		for result, n := range d.Takeovers {
			ch <- prometheus.MustNewConstMetric(c.takeovers, counter, float64(n), d.Disk, result)
		}
		ch <- prometheus.MustNewConstMetric(c.fenced, counter, float64(d.FencedClients), d.Disk)
		ch <- prometheus.MustNewConstMetric(c.fenceErrors, counter, float64(d.FenceErrors), d.Disk)
		ch <- prometheus.MustNewConstMetric(c.writeStalls, counter, float64(d.WriteStalls), d.Disk)
	}

	// A session being reinstated and its replacement carry the same
	// labels for a moment: they are reported together.
	type sessKey struct{ target, initiator, isid string }
	merged := map[sessKey]SessionSnapshot{}
	var order []sessKey
	for _, ss := range s.Sessions {
		k := sessKey{ss.Target, ss.Initiator, ss.ISID}
		m, seen := merged[k]
		if !seen {
			order = append(order, k)
			merged[k] = ss
			continue
		}
		m.Commands += ss.Commands
		m.Errors += ss.Errors
		m.ReadBytes += ss.ReadBytes
		m.WrittenBytes += ss.WrittenBytes
		if ss.LoginTime.After(m.LoginTime) {
			m.LoginTime = ss.LoginTime
		}
		merged[k] = m
	}
	for _, k := range order {
		ss := merged[k]
		labels := []string{k.target, k.initiator, k.isid}
		ch <- prometheus.MustNewConstMetric(c.sessCommands, counter, float64(ss.Commands), labels...)
		ch <- prometheus.MustNewConstMetric(c.sessErrors, counter, float64(ss.Errors), labels...)
		ch <- prometheus.MustNewConstMetric(c.sessReadBytes, counter, float64(ss.ReadBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.sessWrittenBytes, counter, float64(ss.WrittenBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.sessLogin, gauge, float64(ss.LoginTime.UnixNano())/1e9, labels...)
	}
}

// counters sends the command, byte, error, latency and in-flight metrics
// of one set of counters.
func (c *Collector) counters(ch chan<- prometheus.Metric, k *Counters, commands, readBytes, writtenBytes, errs, latency, backend, inFlight *prometheus.Desc, labels ...string) {
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(labels)+len(extra)), labels...), extra...)
	}
	for _, op := range histogramOps {
		o := k.Op(op)
		ch <- prometheus.MustNewConstMetric(commands, prometheus.CounterValue, float64(o.Commands), with(op.String())...)
		ch <- constHistogram(latency, o.Latency, with(op.String()))
		ch <- constHistogram(backend, o.Backend, with(op.String()))
	}
	ch <- prometheus.MustNewConstMetric(readBytes, prometheus.CounterValue, float64(k.ReadBytes), labels...)
	ch <- prometheus.MustNewConstMetric(writtenBytes, prometheus.CounterValue, float64(k.WrittenBytes), labels...)
	ch <- prometheus.MustNewConstMetric(inFlight, prometheus.GaugeValue, float64(k.InFlight), labels...)
	// Only the error kinds that happened: a LUN would otherwise carry 23
	// series of zeroes.
	for key, n := range k.SenseKeys {
		if n > 0 {
			ch <- prometheus.MustNewConstMetric(errs, prometheus.CounterValue, float64(n), with("check_condition", SenseKeyName(uint8(key)))...)
		}
	}
	for i, n := range k.Statuses {
		if n > 0 {
			ch <- prometheus.MustNewConstMetric(errs, prometheus.CounterValue, float64(n), with(statusNames[i], "none")...)
		}
	}
}

// bucketSeconds are the histogram bounds in seconds.
var bucketSeconds = func() (b [len(bucketBounds)]float64) {
	for i, ns := range bucketBounds {
		b[i] = float64(ns) / 1e9
	}
	return b
}()

func constHistogram(desc *prometheus.Desc, h Histogram, labels []string) prometheus.Metric {
	cum := make(map[float64]uint64, len(bucketSeconds))
	var n uint64
	for i, le := range bucketSeconds {
		n += h.Buckets[i]
		cum[le] = n
	}
	n += h.Buckets[len(bucketSeconds)]
	return prometheus.MustNewConstHistogram(desc, n, h.Sum.Seconds(), cum, labels...)
}

// Handler serves reg's metrics, with those of the Go runtime and the
// process, in the Prometheus exposition format (for GET /metrics).
func Handler(reg *Registry, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	pr := prometheus.NewRegistry()
	pr.MustRegister(
		NewCollector(reg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(pr, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
