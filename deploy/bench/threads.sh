#!/usr/bin/env bash
# threads.sh: where a target's CPU goes, thread by thread, over one
# `qemu-img bench` run: CPU µs (utime + stime) and context switches per I/O
# of each thread name of the target process (Go's threads share the binary's
# name; librbd's are msgr-worker-*, io_context_pool, ...), and qemu-img's
# own CPU µs per I/O.
#
#   deploy/bench/threads.sh PID|self COUNT SIZE DEPTH read|write URL [PID ...]
#   e.g. deploy/bench/threads.sh 1234 40000 4k 16 read \
#          iscsi://127.0.0.1:3260/iqn.2003-01.org.example:gw/0 "$(pgrep -x ceph-osd)"
#        deploy/bench/threads.sh self 40000 4k 16 read rbd:rbd/image:conf=/tmp/ceph.conf
#
# "self" measures qemu-img's own threads (qemu's rbd driver runs librbd in
# the client). Its threads are read every 20 ms while it runs, so up to the
# last 20 ms of each thread are missed: keep runs at a second or more. Any
# further PIDs (an OSD, say) are reported as a whole, CPU µs per I/O.
set -euo pipefail

(($# >= 6)) || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
target="$1" count="$2" size="$3" depth="$4" rw="$5" url="$6"
shift 6
others=("$@")
case "$rw" in
read) write=() ;;
write) write=(-w) ;;
*) echo "threads: want read or write, got $rw" >&2; exit 2 ;;
esac
[[ "$target" == self || -d "/proc/$target" ]] || { echo "threads: no process $target" >&2; exit 1; }
hz="$(getconf CLK_TCK)"

# snapshot PID: one line per thread: name, thread id, CPU ticks, switches.
snapshot() {
	local t stat
	for t in /proc/"$1"/task/*; do
		stat="$(cat "$t/stat" 2>/dev/null)" || continue
		# The name is between the first "(" and the last ")"; it may hold spaces.
		local name="${stat#*(}"
		name="${name%)*}"
		local rest="${stat##*) }"
		local sw
		sw="$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}' "$t/status" 2>/dev/null)" || continue
		echo "${name// /_} ${t##*/} $(awk '{print $12 + $13}' <<<"$rest") $sw"
	done
}

# total PID: the process's CPU ticks so far.
total() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
declare -A before
for p in "${others[@]}"; do before[$p]="$(total "$p")"; done
args=(bench -f raw -t none -n -c "$count" -d "$depth" -s "$size" "${write[@]}" "$url")
start="$(date +%s.%N)"
if [[ "$target" == self ]]; then
	: >"$tmp/before"
	LC_ALL=C qemu-img "${args[@]}" >"$tmp/out" 2>&1 &
	q=$!
	while kill -0 "$q" 2>/dev/null; do
		# Keep each thread's last reading; a thread that ended keeps its own.
		snapshot "$q" >>"$tmp/after.all" || true
		sleep 0.02
	done
	wait "$q" || { cat "$tmp/out" >&2; exit 1; }
	awk '{last[$1 " " $2] = $3 " " $4} END {for (k in last) print k, last[k]}' "$tmp/after.all" >"$tmp/after"
	initiator=""
else
	snapshot "$target" >"$tmp/before"
	TIMEFORMAT='%3U %3S'
	{ time LC_ALL=C qemu-img "${args[@]}" >"$tmp/out" 2>&1; } 2>"$tmp/time" || { cat "$tmp/out" >&2; exit 1; }
	snapshot "$target" >"$tmp/after"
	initiator="$(awk '{print $1 + $2}' "$tmp/time")"
fi
end="$(date +%s.%N)"

echo "$(grep -o 'Run completed in [0-9.]* seconds' "$tmp/out" || echo "ran $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}') s"), $count requests"
# Threads that started during the run count from zero.
awk -v n="$count" -v hz="$hz" -v first="$tmp/before" '
	FILENAME == first {cpu0[$1 " " $2] = $3; sw0[$1 " " $2] = $4; next}
	{k = $1 " " $2; cpu[$1] += $3 - cpu0[k]; sw[$1] += $4 - sw0[k]}
	END {
		for (t in cpu) if (cpu[t] > 0) {
			printf "  %-18s %8.1f µs/io %6.2f switches/io\n", t, cpu[t] / hz * 1e6 / n, sw[t] / n | "sort"
			all += cpu[t]; allsw += sw[t]
		}
		close("sort")
		printf "  %-18s %8.1f µs/io %6.2f switches/io\n", "(all threads)", all / hz * 1e6 / n, allsw / n
	}' "$tmp/before" "$tmp/after"
[[ -n "$initiator" ]] && awk -v s="$initiator" -v n="$count" 'BEGIN {printf "  %-18s %8.1f µs/io\n", "qemu-img", s * 1e6 / n}'
for p in "${others[@]}"; do
	awk -v a="${before[$p]}" -v b="$(total "$p")" -v n="$count" -v hz="$hz" -v name="pid $p ($(cat "/proc/$p/comm"))" \
		'BEGIN {printf "  %-18s %8.1f µs/io\n", name, (b - a) / hz * 1e6 / n}'
done
