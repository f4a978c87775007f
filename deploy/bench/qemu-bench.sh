#!/usr/bin/env bash
# qemu-bench.sh: compare block targets with `qemu-img bench` (libiscsi
# initiator or qemu's rbd driver, from qemu-utils + qemu-block-extra),
# throughput and the CPU time each target spends per I/O.
#
#   deploy/bench/qemu-bench.sh LABEL[:PID]=URL [LABEL[:PID]=URL ...]
#   e.g. deploy/bench/qemu-bench.sh \
#          gateway:1234=iscsi://127.0.0.1:3260/iqn.2003-01.org.example:gw/0 \
#          tgt:1300=iscsi://127.0.0.1:3261/iqn.2001-04.com.example:tgt-null/1 \
#          librbd:self=rbd:rbd/image:conf=/tmp/ceph.conf
#
# PID is the target's process: its CPU time (utime + stime of
# /proc/PID/stat) over each run, divided by the run's requests, is the CPU
# column (µs per I/O). PID "self" means the target runs inside qemu-img
# (qemu's rbd driver: librbd in the client), whose own CPU time is then
# counted. Without PID the column shows "-".
#
# Four workloads: 4 KiB reads and writes at queue depth 16, 1 MiB reads and
# writes at queue depth 8. Each round runs every workload against every
# target in turn, so all targets see the same machine noise; the table shows
# the median of the rounds, the CPU µs per I/O over all rounds, and the
# ratios of the first target to each other one (IOPS: higher is better for
# the first; CPU: lower is). WRITES OVERWRITE THE TARGETS: point it only at
# scratch LUNs and images.
#
# A second table gives the initiator's side: qemu-img's own CPU µs per I/O
# against each target and how busy that kept it (its CPU time over the wall
# time, per qemu-img process). qemu-img runs libiscsi on one thread, so at
# about 100 % the initiator, not the target, sets the IOPS. (With librbd in
# it, qemu-img has more threads, and this can pass 100 %.)
#
# The request count of a workload is calibrated once, on the first target,
# so that one run takes about BENCH_SECONDS; every target then runs the
# same count.
#
# Tunables (environment):
#   BENCH_ROUNDS    rounds, median taken                         (3)
#   BENCH_SECONDS   target duration of one run                   (3)
#   BENCH_COUNT     fixed request count for every workload (skips calibration)
#   BENCH_SESSIONS  also run 4k workloads with this many qemu-img
#                   processes (one session each) at QD32 at once    (off)
set -euo pipefail

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-3}"
sessions="${BENCH_SESSIONS:-0}"
hz="$(getconf CLK_TCK)"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
(($# >= 1)) || usage
command -v qemu-img >/dev/null || { echo "qemu-bench: qemu-img not found (apt-get install qemu-utils qemu-block-extra)" >&2; exit 1; }

labels=()
declare -A url pid
for arg in "$@"; do
	[[ "$arg" == ?*=?* ]] || { echo "qemu-bench: want LABEL[:PID]=URL, got: $arg" >&2; usage; }
	label="${arg%%=*}"
	p=""
	if [[ "$label" == *:* ]]; then
		p="${label#*:}"
		label="${label%%:*}"
	fi
	[[ -z "${url[$label]:-}" ]] || { echo "qemu-bench: label $label given twice" >&2; exit 2; }
	labels+=("$label")
	url[$label]="${arg#*=}"
	pid[$label]="$p"
done

# name  request-size  bytes  queue-depth  write(1)  calibration-count  processes
workloads=(
	"4k-QD16-read  4k 4096    16 0 4000 1"
	"4k-QD16-write 4k 4096    16 1 4000 1"
	"1M-QD8-read   1M 1048576  8 0 300  1"
	"1M-QD8-write  1M 1048576  8 1 300  1"
)
if ((sessions > 1)); then
	workloads+=(
		"${sessions}x4k-QD32-read  4k 4096 32 0 4000 $sessions"
		"${sessions}x4k-QD32-write 4k 4096 32 1 4000 $sessions"
	)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ticks PID: the process's CPU time so far in clock ticks (utime + stime).
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# target_size LABEL: the size in bytes of the label's target.
target_size() {
	local n
	n="$(qemu-img info --output=json "${url[$1]}" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p')"
	[[ -n "$n" ]] || { echo "qemu-bench: cannot read the size of ${url[$1]}" >&2; exit 1; }
	echo "$n"
}

# run LABEL SIZE DEPTH WRITE COUNT PROCS: runs PROCS qemu-img bench at once
# (COUNT requests each), prints the wall seconds, the CPU ticks the label's
# process spent meanwhile ("-" when unknown) and the CPU seconds of the
# qemu-img processes.
run() {
	local label="$1" size="$2" depth="$3" write="$4" count="$5" procs="$6"
	local target="${url[$label]}" p="${pid[$label]}"
	local args=(bench -f raw -t none -c "$count" -d "$depth" -s "$size")
	((write)) && args+=(-w)
	local before=0 start end i rc=0 cpu="-" span=0 pids=()
	((procs > 1)) && span="$(($(target_size "$label") / procs / 4096 * 4096))"
	[[ -n "$p" && "$p" != self ]] && before="$(ticks "$p")"
	start="$(date +%s.%N)"
	for ((i = 0; i < procs; i++)); do
		# Each process starts in its own part of the target, so that they
		# do not write the same blocks (qemu-img wraps at the end).
		local off=()
		((procs > 1)) && off=(-o "$((i * span))")
		(
			TIMEFORMAT='%3U %3S'
			{ time LC_ALL=C qemu-img "${args[@]}" "${off[@]}" "$target" >"$tmp/out.$i" 2>&1; } 2>"$tmp/time.$i"
		) &
		pids+=($!)
	done
	# Each by its PID: `wait -n` may also collect another background job
	# of this shell, or miss processes that end at the same moment.
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	end="$(date +%s.%N)"
	if ((rc)); then
		echo "qemu-bench: qemu-img ${args[*]} $target failed:" >&2
		cat "$tmp"/out.* | sed 's/^/  /' >&2
		exit 1
	fi
	grep -q '^Run completed in' "$tmp/out.0" || { echo "qemu-bench: cannot parse qemu-img output:" >&2; cat "$tmp/out.0" >&2; exit 1; }
	local initiator
	initiator="$(cat "$tmp"/time.* | awk '{s += $1 + $2} END {printf "%.3f", s}')"
	case "$p" in
	"") ;;
	self) cpu="$(awk -v s="$initiator" -v hz="$hz" 'BEGIN {printf "%.0f", s * hz}')" ;;
	*) cpu="$(($(ticks "$p") - before))" ;;
	esac
	rm -f "$tmp"/out.* "$tmp"/time.*
	awk -v a="$start" -v b="$end" -v c="$cpu" -v i="$initiator" 'BEGIN {printf "%.3f %s %s\n", b - a, c, i}'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A count times ticks_sum initiator_sum wall_sum
first="${labels[0]}"
for w in "${workloads[@]}"; do
	read -r name size _ depth write probe procs <<<"$w"
	if [[ -n "${BENCH_COUNT:-}" ]]; then
		count[$name]="$BENCH_COUNT"
	else
		read -r secs _ <<<"$(run "$first" "$size" "$depth" "$write" "$probe" "$procs")"
		count[$name]="$(awk -v p="$probe" -v s="$secs" -v want="$seconds" 'BEGIN {
			n = (s > 0) ? int(p * want / s) : p * 10; if (n < p) n = p; print n }')"
	fi
	echo "qemu-bench: $name: ${count[$name]} requests per process and run" >&2
done

for r in $(seq "$rounds"); do
	for w in "${workloads[@]}"; do
		read -r name size _ depth write _ procs <<<"$w"
		for label in "${labels[@]}"; do
			read -r secs cpu initiator <<<"$(run "$label" "$size" "$depth" "$write" "${count[$name]}" "$procs")"
			times[$name|$label]+="$secs "
			initiator_sum[$name|$label]="$(awk -v a="${initiator_sum[$name|$label]:-0}" -v b="$initiator" 'BEGIN {print a + b}')"
			wall_sum[$name|$label]="$(awk -v a="${wall_sum[$name|$label]:-0}" -v b="$secs" 'BEGIN {print a + b}')"
			if [[ "$cpu" != - ]]; then
				ticks_sum[$name|$label]=$((${ticks_sum[$name|$label]:-0} + cpu))
			fi
			echo "qemu-bench: round $r/$rounds $name $label: ${secs}s, ${cpu} CPU ticks" >&2
		done
	done
done

echo
echo "qemu-img bench -t none, median of $rounds rounds; CPU: the target process's µs per I/O over all rounds;"
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
header="$(printf '%-18s' workload)"
for label in "${labels[@]}"; do
	header+="$(printf ' %18s %8s %8s' "$label IOPS" "MB/s" "CPU µs")"
done
for label in "${labels[@]:1}"; do
	header+="$(printf ' %22s' "$first/$label IOPS CPU")"
done
echo "$header"
for w in "${workloads[@]}"; do
	read -r name _ bytes _ _ _ procs <<<"$w"
	line="$(printf '%-18s' "$name")"
	declare -A iops=() cpuus=()
	for label in "${labels[@]}"; do
		med="$(median <<<"${times[$name|$label]}")"
		n=$((count[$name] * procs))
		iops[$label]="$(awk -v c="$n" -v s="$med" 'BEGIN {printf "%.0f", c / s}')"
		mb="$(awk -v c="$n" -v b="$bytes" -v s="$med" 'BEGIN {printf "%.1f", c * b / s / 1e6}')"
		cpuus[$label]=-
		if [[ -n "${ticks_sum[$name|$label]:-}" ]]; then
			cpuus[$label]="$(awk -v t="${ticks_sum[$name|$label]}" -v hz="$hz" -v n="$n" -v r="$rounds" \
				'BEGIN {printf "%.1f", t / hz * 1e6 / (n * r)}')"
		fi
		line+="$(printf ' %18s %8s %8s' "${iops[$label]}" "$mb" "${cpuus[$label]}")"
	done
	for label in "${labels[@]:1}"; do
		line+="$(awk -v a="${iops[$first]}" -v b="${iops[$label]}" -v ca="${cpuus[$first]}" -v cb="${cpuus[$label]}" 'BEGIN {
			r = (b > 0) ? sprintf("%.2f", a / b) : "-"
			c = (ca != "-" && cb != "-" && cb > 0) ? sprintf("%.2f", ca / cb) : "-"
			printf " %15s %6s", r, c }')"
	done
	echo "$line"
done

echo
echo "initiator: qemu-img's CPU µs per I/O over all rounds, and how busy it was (CPU over wall time, per process)"
header="$(printf '%-18s' workload)"
for label in "${labels[@]}"; do
	header+="$(printf ' %18s %6s' "$label CPU µs" "busy")"
done
echo "$header"
for w in "${workloads[@]}"; do
	read -r name _ _ _ _ _ procs <<<"$w"
	line="$(printf '%-18s' "$name")"
	for label in "${labels[@]}"; do
		line+="$(awk -v s="${initiator_sum[$name|$label]}" -v wall="${wall_sum[$name|$label]}" -v n="$((count[$name] * procs))" \
			-v r="$rounds" -v p="$procs" 'BEGIN {printf " %18.1f %5.0f%%", s * 1e6 / (n * r), (wall > 0) ? 100 * s / (wall * p) : 0}')"
	done
	echo "$line"
done
