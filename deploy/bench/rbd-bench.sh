#!/usr/bin/env bash
# rbd-bench.sh: the RBD data path measured with `qemu-img bench` (4 KiB
# requests at queue depth 16, 1 MiB at queue depth 8, reads and writes):
#
#   librbd    qemu's rbd driver straight into librbd: the ceiling
#   tgt-rbd   Debian's tgtd with its librbd backing store, over iSCSI
#   LABEL     any LABEL[:PID]=URL given on the command line, e.g. this
#             gateway's LUN: gateway:PID=iscsi://127.0.0.1:3260/<iqn>/<lun>
#
#   deploy/bench/rbd-bench.sh [LABEL[:PID]=URL ...]   run (prepares what is missing)
#   deploy/bench/rbd-bench.sh prepare [LABEL ...]
#                                 create the images, print their names; start
#                                 the target of an extra LABEL on its image
#                                 rbd/rbdgw-bench-LABEL before running
#   deploy/bench/rbd-bench.sh cleanup            remove the benchmark images
#
# Every case gets its own image of the same kind (default features, 4 MiB
# objects, BENCH_IMAGE_MIB in size) filled with data beforehand, so reads
# read data and writes overwrite allocated objects everywhere. librbd runs
# with rbd_cache=false in every case (qemu's -t none; microceph.sh's
# ceph.conf for tgt). Each round runs every workload against every case in
# turn, so all see the same machine noise; the table (qemu-bench.sh) gives
# the medians, the CPU µs per I/O of each target process (qemu-img itself
# for librbd, tgtd, the gateway) and the ratios of the first case (the
# first LABEL given, else librbd) to the others.
#
# The cluster is the one of $CEPH_CONF; without it a private micro cluster
# is started (deploy/microceph.sh) and stopped at the end.
#
# Tunables (environment):
#   BENCH_ROUNDS, BENCH_SECONDS, BENCH_SESSIONS   see qemu-bench.sh
#   BENCH_IMAGE_MIB   image size in MiB                             (1024)
#   BENCH_POOL        pool                                           (rbd)
#   TGT_RBD_PORT      tgtd portal port      (3262, or the next free one)
#   RBD_BENCH_NO_TGT=1  skip the tgt-rbd case
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
deploy="$(cd "$here/.." && pwd)"
image_mib="${BENCH_IMAGE_MIB:-1024}"
pool="${BENCH_POOL:-rbd}"

log() { echo "rbd-bench: $*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

image_of() { echo "rbdgw-bench-$1"; }

# prepare_image LABEL: create and fill the case's image unless it exists
# with the right size.
prepare_image() {
	local img size
	img="$(image_of "$1")"
	size="$(rbd info --format json "$pool/$img" 2>/dev/null | sed -n 's/.*"size":\([0-9]*\).*/\1/p' || true)"
	if [[ "$size" == "$((image_mib << 20))" ]]; then
		return 0
	fi
	[[ -z "$size" ]] || rbd rm --no-progress "$pool/$img" >/dev/null
	rbd create --size "${image_mib}M" "$pool/$img"
	rbd bench --io-type write --io-size 4M --io-threads 8 --io-pattern seq \
		--io-total "${image_mib}M" "$pool/$img" >/dev/null
	log "prepared $pool/$img (${image_mib} MiB, filled)"
}

cleanup_images() {
	local img
	for img in $(rbd ls "$pool" | grep '^rbdgw-bench-' || true); do
		rbd rm --no-progress "$pool/$img" >/dev/null && log "removed $pool/$img"
	done
}

ensure_cluster() {
	if [[ -n "${CEPH_CONF:-}" ]]; then
		timeout 20 rados lspools >/dev/null 2>&1 || die "the cluster of CEPH_CONF=$CEPH_CONF does not answer"
		return
	fi
	export CEPH_DIR
	CEPH_DIR="$(mktemp -d /tmp/rbd-bench-ceph.XXXXXX)"
	trap '"$deploy/microceph.sh" stop >/dev/null 2>&1 || true' EXIT
	"$deploy/microceph.sh" start >/dev/null
	eval "$("$deploy/microceph.sh" env)"
}

free_port() {
	local p
	if [[ -n "${TGT_RBD_PORT:-}" ]]; then
		echo "$TGT_RBD_PORT"
		return
	fi
	for p in $(seq 3262 3299); do
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
	die "no free port in 3262-3299 for tgtd; set TGT_RBD_PORT"
}

# ---- entry points ----

case "${1:-}" in
-h | --help) usage ;;
prepare)
	shift
	ensure_cluster
	for label in librbd tgt-rbd "$@"; do
		prepare_image "$label"
		echo "$pool/$(image_of "$label")"
	done
	exit 0
	;;
cleanup)
	ensure_cluster
	cleanup_images
	exit 0
	;;
--measure) # internal: called back through tgt-rbd.sh with TGT_RBD_URL set
	shift
	args=("$@")
	[[ -n "${TGT_RBD_URL:-}" ]] && args+=("tgt-rbd:$TGT_PID=$TGT_RBD_URL")
	exec "$here/qemu-bench.sh" "${args[@]}"
	;;
esac

for arg in "$@"; do
	[[ "$arg" == ?*=?* ]] || { log "want LABEL[:PID]=URL, got: $arg"; usage; }
done
command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils qemu-block-extra)"
ensure_cluster
cases=(librbd)
[[ "${RBD_BENCH_NO_TGT:-0}" = 1 ]] || cases+=(tgt-rbd)
for arg in "$@"; do
	label="${arg%%=*}"
	cases+=("${label%%:*}")
done
for label in "${cases[@]}"; do prepare_image "$label"; done

librbd_url="rbd:$pool/$(image_of librbd):conf=$CEPH_CONF"
if [[ "${RBD_BENCH_NO_TGT:-0}" = 1 ]]; then
	"$0" --measure "$@" "librbd:self=$librbd_url"
else
	TGT_RBD_PORT="$(free_port)" "$here/tgt-rbd.sh" "$pool/$(image_of tgt-rbd)" \
		"$0" --measure "$@" "librbd:self=$librbd_url"
fi
