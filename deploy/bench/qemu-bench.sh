#!/usr/bin/env bash
# qemu-bench.sh: compare iSCSI targets with `qemu-img bench` (libiscsi
# initiator, from qemu-utils + qemu-block-extra).
#
#   deploy/bench/qemu-bench.sh LABEL=URL [LABEL=URL ...]
#   e.g. deploy/bench/qemu-bench.sh \
#          gateway=iscsi://127.0.0.1:3260/iqn.2003-01.org.example:gw/0 \
#          tgt=iscsi://127.0.0.1:3261/iqn.2001-04.com.example:tgt-null/1
#
# Four workloads: 4 KiB reads and writes at queue depth 16, 1 MiB reads and
# writes at queue depth 8. Each round runs every workload against every
# target in turn, so all targets see the same machine noise; the table shows
# the median of the rounds, and the IOPS ratio of the first target to the
# second. WRITES OVERWRITE THE LUNS: point it only at scratch LUNs.
#
# The request count of a workload is calibrated once, on the first target,
# so that one run takes about BENCH_SECONDS; every target then runs the
# same count.
#
# Tunables (environment):
#   BENCH_ROUNDS    rounds, median taken                         (3)
#   BENCH_SECONDS   target duration of one run                   (3)
#   BENCH_COUNT     fixed request count for every workload (skips calibration)
set -euo pipefail

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-3}"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
(($# >= 1)) || usage
command -v qemu-img >/dev/null || { echo "qemu-bench: qemu-img not found (apt-get install qemu-utils qemu-block-extra)" >&2; exit 1; }

labels=()
declare -A url
for arg in "$@"; do
	[[ "$arg" == *=iscsi://* ]] || { echo "qemu-bench: want LABEL=iscsi://..., got: $arg" >&2; usage; }
	label="${arg%%=*}"
	[[ -z "${url[$label]:-}" ]] || { echo "qemu-bench: label $label given twice" >&2; exit 2; }
	labels+=("$label")
	url[$label]="${arg#*=}"
done

# name  request-size  bytes  queue-depth  write(1)  calibration-count
workloads=(
	"4k-QD16-read  4k 4096    16 0 4000"
	"4k-QD16-write 4k 4096    16 1 4000"
	"1M-QD8-read   1M 1048576  8 0 300"
	"1M-QD8-write  1M 1048576  8 1 300"
)

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run URL SIZE DEPTH WRITE COUNT: prints the seconds one qemu-img bench took.
run() {
	local target="$1" size="$2" depth="$3" write="$4" count="$5"
	local args=(bench -f raw -t none -c "$count" -d "$depth" -s "$size")
	((write)) && args+=(-w)
	if ! LC_ALL=C qemu-img "${args[@]}" "$target" >"$out" 2>&1; then
		echo "qemu-bench: qemu-img ${args[*]} $target failed:" >&2
		sed 's/^/  /' "$out" >&2
		exit 1
	fi
	local secs
	secs="$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' "$out")"
	[[ -n "$secs" ]] || { echo "qemu-bench: cannot parse qemu-img output:" >&2; cat "$out" >&2; exit 1; }
	echo "$secs"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A count times
first="${labels[0]}"
for w in "${workloads[@]}"; do
	read -r name size _ depth write probe <<<"$w"
	if [[ -n "${BENCH_COUNT:-}" ]]; then
		count[$name]="$BENCH_COUNT"
	else
		secs="$(run "${url[$first]}" "$size" "$depth" "$write" "$probe")"
		count[$name]="$(awk -v p="$probe" -v s="$secs" -v want="$seconds" 'BEGIN {
			n = (s > 0) ? int(p * want / s) : p * 10; if (n < p) n = p; print n }')"
	fi
	echo "qemu-bench: $name: ${count[$name]} requests per run" >&2
done

for r in $(seq "$rounds"); do
	for w in "${workloads[@]}"; do
		read -r name size _ depth write _ <<<"$w"
		for label in "${labels[@]}"; do
			secs="$(run "${url[$label]}" "$size" "$depth" "$write" "${count[$name]}")"
			times[$name|$label]+="$secs "
			echo "qemu-bench: round $r/$rounds $name $label: ${secs}s" >&2
		done
	done
done

echo
echo "qemu-img bench, median of $rounds rounds; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
header="$(printf '%-14s' workload)"
for label in "${labels[@]}"; do
	header+="$(printf ' %14s %12s' "$label IOPS" "$label MB/s")"
done
((${#labels[@]} >= 2)) && header+="$(printf ' %12s' "${labels[0]}/${labels[1]}")"
echo "$header"
for w in "${workloads[@]}"; do
	read -r name _ bytes _ _ _ <<<"$w"
	line="$(printf '%-14s' "$name")"
	iops=()
	for label in "${labels[@]}"; do
		med="$(median <<<"${times[$name|$label]}")"
		i="$(awk -v c="${count[$name]}" -v s="$med" 'BEGIN {printf "%.0f", c / s}')"
		mb="$(awk -v c="${count[$name]}" -v b="$bytes" -v s="$med" 'BEGIN {printf "%.1f", c * b / s / 1e6}')"
		iops+=("$i")
		line+="$(printf ' %14s %12s' "$i" "$mb")"
	done
	if ((${#labels[@]} >= 2)); then
		line+="$(awk -v a="${iops[0]}" -v b="${iops[1]}" 'BEGIN {printf " %12.2f", (b > 0) ? a / b : 0}')"
	fi
	echo "$line"
done
