#!/usr/bin/env bash
# Benchmarks an RBD LUN served by this gateway against librbd directly and
# tgt's rbd backstore, all in one run (see rbd-bench.sh for the method).
# Uses the cluster of $CEPH_CONF, or starts a private micro cluster.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${BENCH_PORT:-3281}"
iqn=iqn.2024-01.io.rbdgw:rbd-bench
dir="$(mktemp -d /tmp/rbdgw-rbdbench.XXXXXX)"
pid="" started_ceph=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$started_ceph" ] && CEPH_DIR="$dir/ceph" "$root/deploy/microceph.sh" stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
if [ -z "${CEPH_CONF:-}" ]; then
	CEPH_DIR="$dir/ceph" "$root/deploy/microceph.sh" start >&2
	eval "$(CEPH_DIR="$dir/ceph" "$root/deploy/microceph.sh" env)"
	started_ceph=1
fi
export CEPH_CONF
"$here/rbd-bench.sh" prepare gateway >&2
cat >"$dir/gateway.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - {name: bench, backend: rbd, pool: ${BENCH_POOL:-rbd}, image: rbdgw-bench-gateway}
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: bench}]
    allow_any_initiator: true
YAML
"$root/bin/rbdgw" -config "$dir/gateway.yaml" -log-level warn &
pid=$!
for _ in $(seq 100); do iscsi-ls "iscsi://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== RBD LUN vs librbd direct (qemu-img's rbd driver) vs tgt bs_rbd"
"$here/rbd-bench.sh" "gateway:$pid=iscsi://127.0.0.1:$port/$iqn/0"
