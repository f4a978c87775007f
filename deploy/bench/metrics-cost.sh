#!/usr/bin/env bash
# What counting I/O costs: two standalone gateways with a 1 GiB memory LUN
# each, one with the counters off (-io-metrics=false), one with them on
# (the default), benchmarked side by side in one run by qemu-bench.sh
# (interleaved rounds, medians, CPU µs per I/O of each gateway process, and
# the ratios of metrics=on to metrics=off).
#
#   deploy/bench/metrics-cost.sh          (make build first; BENCH_ROUNDS,
#                                          BENCH_SECONDS as qemu-bench.sh)
#
# BENCH_PORT is the first of the two iSCSI ports (3290).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${BENCH_PORT:-3290}"
iqn=iqn.2024-01.io.rbdgw:metrics-cost
dir="$(mktemp -d /tmp/rbdgw-metrics-cost.XXXXXX)"
pids=()
# shellcheck source=rbdgw-lib.sh
. "$here/rbdgw-lib.sh"
cleanup() {
	rbdgw_stop_all
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

start() { # start NAME PORT FLAGS...
	local name="$1" p="$2"
	shift 2
	rbdgw_start "$dir" "$name" "$p" "$iqn" '{name: bench, backend: memory, size: 1073741824}' -log-level error "$@"
	pids+=("$rbdgw_pid")
}
start off "$port" -io-metrics=false
start on "$((port + 1))"
echo "== memory LUN, metrics off (-io-metrics=false) vs on, one run"
# The first target is the one the ratios are of: on, so that an IOPS ratio
# below 1 and a CPU ratio above 1 are what counting costs.
"$here/qemu-bench.sh" "metrics-on:${pids[1]}=iscsi://127.0.0.1:$((port + 1))/$iqn/0" \
	"metrics-off:${pids[0]}=iscsi://127.0.0.1:$port/$iqn/0"
