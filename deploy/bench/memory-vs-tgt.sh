#!/usr/bin/env bash
# Benchmarks this gateway's memory LUN against tgt's null backstore in one
# run (qemu-img bench, interleaved rounds, medians, CPU µs per I/O of each
# target process, ratios; see qemu-bench.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${BENCH_PORT:-3280}"
iqn=iqn.2024-01.io.rbdgw:bench
dir="$(mktemp -d /tmp/rbdgw-bench.XXXXXX)"
# shellcheck source=rbdgw-lib.sh
. "$here/rbdgw-lib.sh"
trap 'rbdgw_stop_all; rm -rf "$dir"' EXIT
rbdgw_start "$dir" gateway "$port" "$iqn" '{name: bench, backend: memory, size: 1073741824}' -log-level warn
pid=$rbdgw_pid
echo "== memory LUN vs tgt null"
"$here/tgt-null.sh" bash -c "\"$here/qemu-bench.sh\" rbdgw:$pid=iscsi://127.0.0.1:$port/$iqn/0 tgt-null:\$TGT_PID=\"\$TGT_NULL_URL\""
