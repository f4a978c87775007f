// Package metrics counts what a gateway does, per LUN, per session and for
// the whole gateway, and exposes it to Prometheus (GET /metrics) and to the
// stats API (Snapshot).
//
// Counting happens on the I/O path, so it takes no lock and allocates
// nothing per command: the iSCSI server looks a LUN's counters up once per
// connection (Registry.LUN, again only when Registry.Generation changes)
// and each command adds to a few atomics of that LUN and of its session —
// commands, bytes, errors by sense key, latency from arrival to status
// and its backend part in fixed histogram buckets, commands in flight.
// The ALUA state is read when the metrics are, ownership events (owner
// changes, takeovers, fencing, stalled writes) are rare and counted under
// the registry's lock.
//
// A scrape reads everything at once (Registry.Snapshot) through a
// prometheus.Collector, so client_golang never runs on the I/O path. The
// counters only grow while a LUN stays mapped (LUNSnapshot.Since), so
// rates over a window are differences of two snapshots (RatesBetween,
// Histogram.Quantile). docs/metrics.md lists every metric.
package metrics
