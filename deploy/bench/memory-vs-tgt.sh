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
cat >"$dir/gateway.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - {name: bench, backend: memory, size: 1073741824}
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: bench}]
    allow_any_initiator: true
YAML
"$root/bin/rbdgw" -config "$dir/gateway.yaml" -log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do iscsi-ls "iscsi://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== memory LUN vs tgt null"
"$here/tgt-null.sh" bash -c "\"$here/qemu-bench.sh\" rbdgw:$pid=iscsi://127.0.0.1:$port/$iqn/0 tgt-null:\$TGT_PID=\"\$TGT_NULL_URL\""
