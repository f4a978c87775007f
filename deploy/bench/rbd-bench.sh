#!/usr/bin/env bash
# rbd-bench.sh: the RBD data path measured with `qemu-img bench` (4 KiB
# requests at queue depth 16, 1 MiB at queue depth 8, reads and writes):
#
#   librbd    qemu's rbd driver straight into librbd: the ceiling
#   tgt-rbd   Debian's tgtd with its librbd backing store, over iSCSI
#   LABEL     any further LABEL=URL given on the command line, e.g. this
#             gateway's LUN: gateway=iscsi://127.0.0.1:3260/<iqn>/<lun>
#
#   deploy/bench/rbd-bench.sh [LABEL=URL ...]   run (prepares what is missing)
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
# turn, so all see the same machine noise; the table gives the medians and
# each case's IOPS relative to librbd.
#
# The cluster is the one of $CEPH_CONF; without it a private micro cluster
# is started (deploy/microceph.sh) and stopped at the end.
#
# Tunables (environment):
#   BENCH_ROUNDS      rounds, median taken                             (3)
#   BENCH_SECONDS     target duration of one run, for calibration      (3)
#   BENCH_IMAGE_MIB   image size in MiB                             (1024)
#   BENCH_POOL        pool                                           (rbd)
#   TGT_RBD_PORT      tgtd portal port      (3262, or the next free one)
#   RBD_BENCH_NO_TGT=1  skip the tgt-rbd case
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
deploy="$(cd "$here/.." && pwd)"
rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-3}"
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

# ---- the measurement (runs inside tgt-rbd.sh when tgt is part of it) ----

# name  request-size  bytes  queue-depth  write(1)  calibration-count
workloads=(
	"4k-QD16-read  4k 4096    16 0 4000"
	"4k-QD16-write 4k 4096    16 1 4000"
	"1M-QD8-read   1M 1048576  8 0 300"
	"1M-QD8-write  1M 1048576  8 1 300"
)

# run URL SIZE DEPTH WRITE COUNT: prints the seconds one qemu-img bench took.
run() {
	local target="$1" size="$2" depth="$3" write="$4" count="$5" out secs
	local args=(bench -f raw -t none -c "$count" -d "$depth" -s "$size")
	((write)) && args+=(-w)
	if ! out="$(LC_ALL=C qemu-img "${args[@]}" "$target" 2>&1)"; then
		log "qemu-img ${args[*]} $target failed:"
		sed 's/^/  /' <<<"$out" >&2
		exit 1
	fi
	secs="$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' <<<"$out")"
	[[ -n "$secs" ]] || die "cannot parse qemu-img output: $out"
	echo "$secs"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

measure() {
	local labels=() arg label w name size bytes depth write probe secs r med
	declare -A url count times iops
	for arg in "$@"; do
		label="${arg%%=*}"
		[[ -z "${url[$label]:-}" ]] || die "label $label given twice"
		labels+=("$label")
		url[$label]="${arg#*=}"
	done
	local base="${labels[0]}"

	for w in "${workloads[@]}"; do
		read -r name size _ depth write probe <<<"$w"
		secs="$(run "${url[$base]}" "$size" "$depth" "$write" "$probe")"
		count[$name]="$(awk -v p="$probe" -v s="$secs" -v want="$seconds" 'BEGIN {
			n = (s > 0) ? int(p * want / s) : p * 10; if (n < p) n = p; print n }')"
		log "$name: ${count[$name]} requests per run"
	done
	for r in $(seq "$rounds"); do
		for w in "${workloads[@]}"; do
			read -r name size _ depth write _ <<<"$w"
			for label in "${labels[@]}"; do
				secs="$(run "${url[$label]}" "$size" "$depth" "$write" "${count[$name]}")"
				times[$name|$label]+="$secs "
				log "round $r/$rounds $name $label: ${secs}s"
			done
		done
	done

	echo
	echo "qemu-img bench -t none, median of $rounds rounds; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	local header line
	header="$(printf '%-14s' workload)"
	for label in "${labels[@]}"; do
		header+="$(printf ' %16s %10s' "$label IOPS" "MB/s")"
	done
	for label in "${labels[@]:1}"; do
		header+="$(printf ' %16s' "$label/$base")"
	done
	echo "$header"
	for w in "${workloads[@]}"; do
		read -r name _ bytes _ _ _ <<<"$w"
		line="$(printf '%-14s' "$name")"
		for label in "${labels[@]}"; do
			med="$(median <<<"${times[$name|$label]}")"
			iops[$label]="$(awk -v c="${count[$name]}" -v s="$med" 'BEGIN {printf "%.0f", c / s}')"
			line+="$(printf ' %16s %10s' "${iops[$label]}" \
				"$(awk -v c="${count[$name]}" -v b="$bytes" -v s="$med" 'BEGIN {printf "%.1f", c * b / s / 1e6}')")"
		done
		for label in "${labels[@]:1}"; do
			line+="$(awk -v a="${iops[$label]}" -v b="${iops[$base]}" 'BEGIN {printf " %16.2f", (b > 0) ? a / b : 0}')"
		done
		echo "$line"
	done
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
	[[ -n "${TGT_RBD_URL:-}" ]] && args=("${args[0]}" "tgt-rbd=$TGT_RBD_URL" "${args[@]:1}")
	measure "${args[@]}"
	exit 0
	;;
esac

for arg in "$@"; do
	[[ "$arg" == ?*=?* ]] || { log "want LABEL=URL, got: $arg"; usage; }
done
command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils qemu-block-extra)"
ensure_cluster
cases=(librbd)
[[ "${RBD_BENCH_NO_TGT:-0}" = 1 ]] || cases+=(tgt-rbd)
for arg in "$@"; do cases+=("${arg%%=*}"); done
for label in "${cases[@]}"; do prepare_image "$label"; done

librbd_url="rbd:$pool/$(image_of librbd):conf=$CEPH_CONF"
if [[ "${RBD_BENCH_NO_TGT:-0}" = 1 ]]; then
	"$0" --measure "librbd=$librbd_url" "$@"
else
	TGT_RBD_PORT="$(free_port)" "$here/tgt-rbd.sh" "$pool/$(image_of tgt-rbd)" \
		"$0" --measure "librbd=$librbd_url" "$@"
fi
