#!/usr/bin/env bash
# Benchmarks this gateway's memory LUN against tgt's null backstore in one
# run (qemu-img bench, interleaved rounds, medians, CPU µs per I/O of each
# target process, ratios; see qemu-bench.sh).
#
# The memory LUN is written once, whole, before the comparison: it allocates
# its memory on the first write to each MiB, so the first round of writes
# would otherwise also measure that allocation (and the garbage collections
# it starts) and every later one would not. tgt's null store stores nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${BENCH_PORT:-3280}"
iqn=iqn.2024-01.io.rbdgw:bench
dir="$(mktemp -d /tmp/rbdgw-bench.XXXXXX)"
# shellcheck source=rbdgw-lib.sh
. "$here/rbdgw-lib.sh"
trap 'rbdgw_stop_all; rm -rf "$dir"' EXIT
size_mib=1024
rbdgw_start "$dir" gateway "$port" "$iqn" "{name: bench, backend: memory, size: $((size_mib << 20))}" -log-level warn
pid=$rbdgw_pid
qemu-img bench -f raw -t none -n -w -c "$size_mib" -d 8 -s 1M "iscsi://127.0.0.1:$port/$iqn/0" >/dev/null
echo "== memory LUN vs tgt null"
"$here/tgt-null.sh" bash -c "\"$here/qemu-bench.sh\" rbdgw:$pid=iscsi://127.0.0.1:$port/$iqn/0 tgt-null:\$TGT_PID=\"\$TGT_NULL_URL\""
