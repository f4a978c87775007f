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
started_ceph=""
# shellcheck source=rbdgw-lib.sh
. "$here/rbdgw-lib.sh"
cleanup() {
	rbdgw_stop_all
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
rbdgw_start "$dir" gateway "$port" "$iqn" "{name: bench, backend: rbd, pool: ${BENCH_POOL:-rbd}, image: rbdgw-bench-gateway}" -log-level warn
pid=$rbdgw_pid
echo "== RBD LUN vs librbd direct (qemu-img's rbd driver) vs tgt bs_rbd"
"$here/rbd-bench.sh" "gateway:$pid=iscsi://127.0.0.1:$port/$iqn/0"
