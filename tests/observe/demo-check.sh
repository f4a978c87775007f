#!/usr/bin/env bash
# Checks the observability of the cluster demo against qemu-img: what
# qemu-img bench reports, /metrics of both gateways, and gwcli top must
# agree on the demo LUN, on the right gateway.
#
#   1. starts deploy/demo.sh in its own process group (or, with --running,
#      uses a `make demo` already running: RBDGW_API_URL and
#      RBDGW_API_TOKEN from its env: line);
#   2. finds the owner of rbd/demo and runs qemu-img bench (4 KiB reads,
#      queue depth 16, about BENCH_SECONDS, 20) through the owner's portal;
#   3. in the middle of the run reads GET /metrics of both gateways twice,
#      WINDOW (8) seconds apart, and runs `gwcli top -n 1 -o json
#      window=8s` once;
#   4. prints qemu-img's IOPS next to the read IOPS each reports for LUN 0
#      through each gateway, and the reads the owner counted over the whole
#      run (from a scrape before it to one after it), and runs `promtool check metrics` on both
#      /metrics outputs;
#   5. stops the demo it started (SIGTERM to its process group).
#
#   tests/observe/demo-check.sh [--running]        (make observe-check)
#
# Fails (exit 1) when the owner's figures are more than 10% from
# qemu-img's, when the owner did not count qemu-img's reads (up to 100 more
# for its start), when the other gateway reports reads qemu-img did not make,
# or when promtool finds a problem. Needs bin/ (make build), the demo's
# tools, qemu-img, curl and promtool (make deps). About 35 s with the
# demo's start; the mid-run figures need a machine whose load is steady.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
running=""
case "${1:-}" in
--running) running=1 ;;
"") ;;
*)
	echo "usage: $0 [--running]" >&2
	exit 2
	;;
esac

iqn="iqn.2024-01.io.rbdgw:demo"
port_a="${DEMO_PORT:-3260}"
api_port="${DEMO_API_PORT:-5000}"
declare -A api=([gw-a]="http://127.0.0.1:$api_port" [gw-b]="http://127.0.0.1:$((api_port + 1))")
declare -A portal=([gw-a]="127.0.0.1:$port_a" [gw-b]="127.0.0.1:$((port_a + 1))")
seconds="${BENCH_SECONDS:-20}"
window="${WINDOW:-8}"
gwcli="$root/bin/gwcli"

say() { printf 'observe: %s\n' "$*" >&2; }
for t in qemu-img curl promtool setsid awk; do
	command -v "$t" >/dev/null || {
		say "$t is missing (make deps)"
		exit 2
	}
done
for b in rbdgw rbdgw-admin gwcli; do
	[ -x "$root/bin/$b" ] || {
		say "bin/$b is missing (make build)"
		exit 2
	}
done

work="$(mktemp -d /tmp/rbdgw-observe.XXXXXX)"
demo=""
bench=""
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
stop() {
	alive "$bench" && kill "$bench" 2>/dev/null
	if alive "$demo"; then
		kill -TERM -- "-$demo" 2>/dev/null
		for _ in $(seq 250); do alive "$demo" || break; sleep 0.1; done
		alive "$demo" && kill -KILL -- "-$demo" 2>/dev/null
		wait "$demo" 2>/dev/null
	fi
	rm -rf "$work"
}
trap stop EXIT
trap 'say interrupted; exit 130' INT TERM HUP
fail() {
	say "FAILED: $*"
	[ -s "$work/demo.out" ] && { say "demo output (last 20 lines):"; tail -n 20 "$work/demo.out" | sed 's/^/    | /' >&2; }
	exit 1
}

# ---- the demo ---------------------------------------------------------------

if [ -z "$running" ]; then
	setsid "$root/deploy/demo.sh" >"$work/demo.out" 2>&1 </dev/null &
	demo=$!
	for _ in $(seq 600); do
		grep -q '^cluster ready' "$work/demo.out" && break
		alive "$demo" || fail "the demo exited before it was ready"
		sleep 0.2
	done
	grep -q '^cluster ready' "$work/demo.out" || fail "no 'cluster ready' after 120 s"
	env_line="$(grep '^env:' "$work/demo.out" | sed 's/^env: *//')"
	eval "$env_line"
	say "demo ready (API $RBDGW_API_URL)"
fi
[ -n "${RBDGW_API_URL:-}" ] && [ -n "${RBDGW_API_TOKEN:-}" ] || fail "RBDGW_API_URL and RBDGW_API_TOKEN must be set (the demo's env: line)"
export RBDGW_API_URL RBDGW_API_TOKEN

owner=""
for _ in $(seq 150); do
	owner="$("$gwcli" -o json /disks info rbd/demo 2>/dev/null | awk -F'"' '$2 == "owner" { print $4; exit }')"
	[ -n "$owner" ] && break
	sleep 0.2
done
[ -n "${api[$owner]:-}" ] || fail "rbd/demo has no owner among gw-a, gw-b (owner: '$owner')"
other=gw-a
[ "$owner" = gw-a ] && other=gw-b
image="driver=iscsi,transport=tcp,portal=${portal[$owner]},target=$iqn,lun=0,initiator-name=iqn.1994-05.com.redhat:observe"

# ---- qemu-img bench --------------------------------------------------------

# completed FILE: the seconds of a finished qemu-img bench run.
completed() { sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p' "$1"; }
qbench() { # qbench COUNT OUT
	exec qemu-img bench -c "$1" -d 16 -s 4096 -S 0 --image-opts "$image" >"$2" 2>&1
}
qbench 3000 "$work/calib.out" &
wait $! || fail "qemu-img bench through $owner: $(cat "$work/calib.out")"
calib="$(completed "$work/calib.out")"
count="$(awk -v s="$calib" -v n="$seconds" 'BEGIN { printf "%d", 3000 / s * n }')"
say "calibration: $(awk -v s="$calib" 'BEGIN { printf "%.0f", 3000 / s }') IOPS; reading $count blocks of 4 KiB at QD16 through $owner (owner of rbd/demo)"

# scrape NAME N: /metrics of gateway NAME into $work/NAME.N, with the time.
scrape() {
	date +%s.%N >"$work/$1.$2.t"
	curl -fsS "${api[$1]}/metrics" >"$work/$1.$2" || fail "GET ${api[$1]}/metrics"
}
scrape "$owner" 0
qbench "$count" "$work/bench.out" &
bench=$!
t0=$(date +%s.%N)
sleep_until() { sleep "$(awk -v t0="$t0" -v at="$1" -v now="$(date +%s.%N)" 'BEGIN { d = t0 + at - now; print (d > 0 ? d : 0) }')"; }
start_at=$(awk -v s="$seconds" -v w="$window" 'BEGIN { printf "%.1f", (s - w) / 2 }')
sleep_until "$start_at"
scrape gw-a 1
scrape gw-b 1
sleep_until "$(awk -v a="$start_at" -v w="$window" 'BEGIN { print a + w }')"
scrape gw-a 2
scrape gw-b 2
"$gwcli" top -n 1 -o json "window=${window}s" >"$work/top.json" 2>"$work/top.err" || fail "gwcli top -n 1 -o json: $(cat "$work/top.err")"
wait "$bench" || fail "qemu-img bench: $(cat "$work/bench.out")"
bench=""
scrape "$owner" 3
secs="$(completed "$work/bench.out")"
[ -n "$secs" ] || fail "qemu-img bench printed no time: $(cat "$work/bench.out")"
qemu="$(awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')"

# ---- what each reports -----------------------------------------------------

# reads FILE: rbdgw_lun_commands_total{op="read"} of LUN 0 of the demo target.
reads() {
	awk -v iqn="$iqn" 'index($0, "rbdgw_lun_commands_total{") == 1 && index($0, "target=\"" iqn "\"") &&
		index($0, "lun=\"0\"") && index($0, "op=\"read\"") { s += $NF } END { printf "%.0f", s }' "$1"
}
metrics_iops() { # metrics_iops NAME: over the window in the middle of the run
	awk -v a="$(reads "$work/$1.1")" -v b="$(reads "$work/$1.2")" -v t1="$(cat "$work/$1.1.t")" -v t2="$(cat "$work/$1.2.t")" \
		'BEGIN { printf "%.0f", (b - a) / (t2 - t1) }'
}
# run_reads: the reads the owner counted from before the run to after it.
run_reads() { awk -v a="$(reads "$work/$owner.0")" -v b="$(reads "$work/$owner.3")" 'BEGIN { printf "%.0f", b - a }'; }
# top_iops NAME: read_iops of LUN 0 through NAME in gwcli top's document
# (one row object per line of its indented JSON: read the fields in order).
top_iops() {
	awk -v gw="$1" -v iqn="$iqn" -F': ' '
		/"name":/ { t = l = g = "" }
		/"target":/ { t = $2; gsub(/[",]/, "", t) }
		/"lun":/ { l = $2; gsub(/[",]/, "", l) }
		/"gateway":/ { g = $2; gsub(/[",]/, "", g) }
		/"read_iops":/ { v = $2; gsub(/,/, "", v); if (t == iqn && l == "0" && g == gw) { printf "%.0f", v; found = 1 } }
		END { if (!found) printf "-" }' "$work/top.json"
}
alua() { # alua NAME: the gateway's ALUA state of LUN 0 in its own /metrics
	awk -v iqn="$iqn" 'index($0, "rbdgw_lun_alua_state{") == 1 && index($0, "target=\"" iqn "\"") && index($0, "lun=\"0\"") && $NF == 1 {
		match($0, /state="[a-z_]*"/); print substr($0, RSTART + 7, RLENGTH - 8); exit }' "$work/$1.2"
}
pct() { awk -v v="$1" -v q="$qemu" 'BEGIN { if (v == "-") print "-"; else printf "%+.1f%%", 100 * (v - q) / q }'; }

echo "qemu-img bench: $count reads of 4 KiB at QD16 in $secs s = $qemu IOPS, through $owner (${portal[$owner]}), owner of rbd/demo (LUN 0)"
printf '%-44s %-6s %-22s %10s %10s\n' "source" "via" "ALUA" "read IOPS" "vs qemu"
bad=0
for g in "$owner" "$other"; do
	m="$(metrics_iops "$g")" tp="$(top_iops "$g")" st="$(alua "$g")"
	vm="$(pct "$m")" vt="$(pct "$tp")"
	[ "$g" = "$owner" ] || vm="(not read)" vt="(not read)"
	printf '%-44s %-6s %-22s %10s %10s\n' "GET ${api[$g]}/metrics (${window} s)" "$g" "$st" "$m" "$vm"
	printf '%-44s %-6s %-22s %10s %10s\n' "gwcli top -n 1 -o json window=${window}s" "$g" "" "$tp" "$vt"
	if [ "$g" = "$owner" ]; then
		for v in "$m" "$tp"; do
			awk -v v="$v" -v q="$qemu" 'BEGIN { exit !(v != "-" && v >= 0.9 * q && v <= 1.1 * q) }' || bad=1
		done
		[ "$st" = active_optimized ] || bad=1
	else
		for v in "$m" "$tp"; do
			awk -v v="$v" -v q="$qemu" 'BEGIN { exit !(v == "-" || v <= 0.01 * q) }' || bad=1
		done
	fi
done

n="$(run_reads)"
echo "$owner counted $n reads of LUN 0 from before the run to after it ($count sent by qemu-img): $(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') IOPS over qemu-img's $secs s"
((n >= count && n <= count + 100)) || bad=1

rc=0
for g in gw-a gw-b; do
	if out="$(promtool check metrics <"$work/$g.2" 2>&1)"; then
		echo "promtool check metrics ${api[$g]}/metrics: ok ($(grep -c '^rbdgw_' "$work/$g.2") rbdgw samples)${out:+; $out}"
	else
		echo "promtool check metrics ${api[$g]}/metrics: FAILED"
		echo "$out" | sed 's/^/    /'
		rc=1
	fi
done
((bad)) && {
	say "FAILED: the owner's figures are not within 10% of qemu-img's or its count is not qemu-img's, or the other gateway reports reads"
	rc=1
}
exit "$rc"
