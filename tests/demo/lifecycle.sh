#!/usr/bin/env bash
# Does with the cluster demo (deploy/demo.sh) what a user does, and fails
# unless the demo behaves:
#
#   1. starts the demo in its own process group, as a terminal or a
#      supervisor would, and waits for "cluster ready";
#   2. SIGKILLs gw-a; the demo must keep running, say that gw-a exited and
#      print the command that starts it again;
#   3. 10 s later: etcd, Ceph and gw-b still run, discovery through gw-b
#      lists the target, gw-b's API reports gw-a down (once its 10 s lease
#      has expired, by 15 s after the kill), and data written through gw-b
#      with qemu-img reads back the same;
#   4. starts gw-a again with the exact command the demo printed; gw-a must
#      answer discovery again and serve the data written through gw-b;
#   5. sends SIGTERM to the demo's process group (what a supervisor does;
#      the script and its foreground children get it at once) and checks
#      that within 20 s the demo exited with status 0, that none of the
#      processes it started (pids from its output, and any process whose
#      command line names its directory) is left, and that its directory
#      /tmp/rbdgw-demo.* is gone.
#
#   tests/demo/lifecycle.sh [--runs K]      (make demo-test)
#
# Needs bin/rbdgw and bin/rbdgw-admin (make build), the Ceph daemons, etcd,
# libiscsi-bin and qemu-utils. One run takes about 20 s. Uses the demo's
# ports (DEMO_PORT 3260 and the next, DEMO_ETCD_PORT 2379, DEMO_ETCD_PEER_PORT
# 2380; set them to move the demo). Prints one line per run and a closing
# "N passed, N failed"; exits non-zero when a run failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=1
while (($#)); do
	case "$1" in
	--runs)
		runs="${2:-}"
		shift 2 || true
		;;
	*)
		echo "usage: $0 [--runs K]" >&2
		exit 2
		;;
	esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || {
	echo "--runs needs a positive number" >&2
	exit 2
}

iqn="iqn.2024-01.io.rbdgw:demo"
port_a="${DEMO_PORT:-3260}"
port_b=$((port_a + 1))
url_a="iscsi://127.0.0.1:$port_a/$iqn/0"
url_b="iscsi://127.0.0.1:$port_b/$iqn/0"
stop_limit=20 # seconds the demo may take to stop everything

for t in iscsi-ls qemu-img etcd ceph-mon ceph-osd setsid; do
	command -v "$t" >/dev/null || {
		echo "lifecycle: $t is missing (make deps)" >&2
		exit 2
	}
done
for b in rbdgw rbdgw-admin; do
	[ -x "$root/bin/$b" ] || {
		echo "lifecycle: bin/$b is missing (make build)" >&2
		exit 2
	}
done

work="$(mktemp -d /tmp/rbdgw-demo-test.XXXXXX)"
demo=""         # pid of the demo script, also its process group
demo_dir=""     # its directory
recorded=()     # pids of what it started, from its output
restarted=""    # gw-a as started again by this test
t_start=0

say() { printf 'lifecycle: %s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# alive PID: PID runs (a zombie waiting for init to reap it does not).
alive() {
	local stat
	[ -n "$1" ] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat="${stat##*) }"
	[ "${stat%% *}" != Z ]
}

# demo_procs: pids of processes whose command line names the demo directory.
demo_procs() {
	local f args
	[ -n "$demo_dir" ] || return 0
	for f in /proc/[0-9]*; do
		args="$(tr '\0' ' ' 2>/dev/null <"$f/cmdline")" || continue
		[[ "$args" == *"$demo_dir/"* ]] && echo "${f#/proc/}"
	done
	return 0
}

# leftovers: what the demo started that still runs.
leftovers() {
	local p out=()
	for p in "${recorded[@]}" $restarted; do alive "$p" && out+=("$p"); done
	for p in $(demo_procs); do [[ " ${out[*]} " == *" $p "* ]] || out+=("$p"); done
	echo "${out[*]}"
}

# reap: after a failure, or when this test is interrupted, stops whatever
# this run of the demo left (only the processes this test started, by pid).
reap() {
	local p left
	if alive "$demo"; then
		kill -TERM -- "-$demo" 2>/dev/null
		for _ in $(seq 250); do alive "$demo" || break; sleep 0.1; done
	fi
	left="$(leftovers)"
	if [ -n "$left" ]; then
		say "killing what the demo left: $left"
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null
	fi
	alive "$demo" && kill -KILL -- "-$demo" 2>/dev/null
	wait "$demo" 2>/dev/null
	[ -n "$restarted" ] && wait "$restarted" 2>/dev/null
	[ -n "$demo_dir" ] && rm -rf "$demo_dir"
	demo="" demo_dir="" restarted="" recorded=()
	return 0
}

interrupted() {
	say "interrupted; stopping the demo"
	reap
	rm -rf "$work"
	exit 130
}
trap interrupted INT TERM HUP
trap 'rm -rf "$work"' EXIT

# fail MESSAGE: ends the run with a clear message and what helps to see why.
fail() {
	local f
	say "FAILED: $*"
	say "demo output (last 30 lines):"
	tail -n 30 "$work/demo.out" | sed 's/^/    | /' >&2
	if [ -n "$demo_dir" ] && [ -d "$demo_dir" ]; then
		for f in "$demo_dir"/gw-*.log "$demo_dir"/etcd.log; do
			[ -f "$f" ] || continue
			say "$(basename "$f") (last 10 lines):"
			tail -n 10 "$f" | sed 's/^/    | /' >&2
		done
	fi
	reap
	return 1
}

# wait_for SECONDS CONDITION...: polls CONDITION every 0.2 s.
wait_for() {
	local limit=$(($1 * 5)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

printed() { grep -q -- "$1" "$work/demo.out"; }
demo_ready() { printed '^cluster ready' || ! alive "$demo"; }
# discovery PORT: SendTargets through PORT lists the demo target.
# (iscsi-ls fails when another portal it lists is down: only its output counts.)
discovery() {
	local out
	out="$(timeout 10 iscsi-ls -s "iscsi://127.0.0.1:$1" 2>/dev/null)"
	[[ "$out" == *"Target:$iqn Portal:127.0.0.1:$1,"* ]]
}
# pid_of NAME: the pid the demo printed for NAME in its ready message.
pid_of() { awk -v n="$1" '$1 == n && $2 == "pid" { print $3; exit }' "$work/demo.out"; }
ceph_pid() { grep -o "$1 pid [0-9]*" "$work/demo.out" | head -1 | awk '{ print $3 }'; }

one_run() {
	local gw_a gw_b etcd mon osd p cmd t_kill t0 left rc
	: >"$work/demo.out"
	t_start=$(now_ms)
	# The demo ports must be free: a previous run or someone else's demo.
	wait_for 20 ports_free || fail "the demo's ports are in use" || return 1

	setsid "$root/deploy/demo.sh" >"$work/demo.out" 2>&1 </dev/null &
	demo=$!
	wait_for 120 demo_ready || fail "no 'cluster ready' after 120 s" || return 1
	alive "$demo" || fail "the demo exited before it was ready" || return 1
	demo_dir="$(grep -o '/tmp/rbdgw-demo\.[A-Za-z0-9]*' "$work/demo.out" | head -1)"
	[ -d "$demo_dir" ] || fail "the demo printed no directory" || return 1
	gw_a="$(pid_of gw-a)" gw_b="$(pid_of gw-b)" etcd="$(pid_of etcd)"
	mon="$(ceph_pid ceph-mon)" osd="$(ceph_pid ceph-osd)"
	recorded=($gw_a $gw_b $etcd $mon $osd)
	((${#recorded[@]} == 5)) || fail "the demo printed ${#recorded[@]} of 5 pids: ${recorded[*]}" || return 1
	for p in "${recorded[@]}"; do
		alive "$p" || fail "pid $p printed by the demo does not run" || return 1
	done
	say "ready after $((($(now_ms) - t_start) / 1000)) s (gw-a $gw_a, gw-b $gw_b, etcd $etcd, mon $mon, osd $osd, $demo_dir)"

	# The env line a shell can eval gives the API and gwcli what they need.
	env_line="$(grep '^env:' "$work/demo.out" | sed 's/^env: *//')"
	[[ "$env_line" == "export RBDGW_API_URL=http://"*" RBDGW_API_TOKEN=rbdgw_"* ]] ||
		fail "no 'env: export RBDGW_API_URL=... RBDGW_API_TOKEN=...' line (got: '$env_line')" || return 1
	(eval "$env_line" && "$root/bin/gwcli" ls / >"$work/ls.out" 2>&1) ||
		fail "gwcli ls / with the printed env failed: $(cat "$work/ls.out")" || return 1
	grep -q "gw-b .*(UP)" "$work/ls.out" || fail "gwcli ls / does not show gw-b up: $(cat "$work/ls.out")" || return 1

	# A gateway dies: the demo says so and keeps the rest serving.
	kill -KILL "$gw_a"
	t_kill=$(now_ms)
	wait_for 5 printed '^gw-a exited' || fail "the demo did not report that gw-a exited" || return 1
	cmd="$(grep -A1 '^to start gw-a again' "$work/demo.out" | sed -n 2p | sed 's/^ *//')"
	[[ "$cmd" == *"-gateway gw-a"*"gw-a.log"* ]] || fail "no command to start gw-a again (got: '$cmd')" || return 1
	printed 'killed by signal 9' || fail "the demo did not report gw-a's exit status" || return 1
	while (($(now_ms) - t_kill < 10000)); do
		alive "$demo" || fail "the demo stopped after gw-a died" || return 1
		sleep 0.5
	done
	for p in "$gw_b" "$etcd" "$mon" "$osd"; do
		alive "$p" || fail "pid $p stopped after gw-a died" || return 1
	done
	discovery "$port_b" || fail "discovery through gw-b does not list $iqn" || return 1
	# gw-b's API answers for the cluster and reports gw-a down once gw-a's
	# liveness lease (10 s, from its last keep-alive) has expired in etcd:
	# by 15 s after the kill.
	gws_b() {
		(eval "$env_line" && RBDGW_API_URL="${RBDGW_API_URL%:*}:$((${RBDGW_API_URL##*:} + 1))" \
			"$root/bin/gwcli" ls "/iscsi-targets/$iqn/gateways" >"$work/gws.out" 2>&1)
	}
	gws_b || fail "gwcli through gw-b's API failed: $(cat "$work/gws.out")" || return 1
	a_down() { gws_b && grep -q "gw-a .*DOWN" "$work/gws.out"; }
	left=$((15 - ($(now_ms) - t_kill) / 1000))
	wait_for $((left > 1 ? left : 1)) a_down ||
		fail "gw-b's API does not report gw-a down 15 s after the kill: $(cat "$work/gws.out")" || return 1

	# Data through gw-b, which now owns the disk.
	head -c 8M /dev/urandom >"$work/pattern"
	timeout 60 qemu-img convert -n -f raw -O raw "$work/pattern" "$url_b" >"$work/qemu.out" 2>&1 ||
		fail "qemu-img could not write through gw-b: $(cat "$work/qemu.out")" || return 1
	rm -f "$work/back"
	timeout 60 qemu-img dd -f raw -O raw bs=1M count=8 if="$url_b" of="$work/back" >"$work/qemu.out" 2>&1 ||
		fail "qemu-img could not read through gw-b: $(cat "$work/qemu.out")" || return 1
	cmp -s "$work/pattern" "$work/back" || fail "data read back through gw-b differs from what was written" || return 1

	# gw-a again, with the command the demo printed, as a user would paste it.
	setsid bash -c "$cmd" </dev/null &
	restarted=$!
	wait_for 40 discovery "$port_a" || fail "gw-a started again does not answer discovery" || return 1
	wait_for 5 printed '^demo: gw-a is running again' || fail "the demo did not notice gw-a again" || return 1
	rm -f "$work/back"
	timeout 60 qemu-img dd -f raw -O raw bs=1M count=8 if="$url_a" of="$work/back" >"$work/qemu.out" 2>&1 ||
		fail "qemu-img could not read through gw-a started again: $(cat "$work/qemu.out")" || return 1
	cmp -s "$work/pattern" "$work/back" || fail "data read back through gw-a differs from what was written" || return 1

	# A supervisor stops the demo: SIGTERM to its whole process group.
	t0=$(now_ms)
	kill -TERM -- "-$demo"
	rc=""
	while (($(now_ms) - t0 < stop_limit * 1000)); do
		if [ -z "$rc" ] && ! alive "$demo"; then
			rc=0
			wait "$demo" || rc=$?
		fi
		[ -n "$rc" ] && [ -z "$(leftovers)" ] && [ ! -e "$demo_dir" ] && break
		sleep 0.1
	done
	t_stop=$(($(now_ms) - t0))
	[ -n "$rc" ] || fail "the demo still runs ${stop_limit} s after SIGTERM" || return 1
	left="$(leftovers)"
	[ -z "$left" ] || fail "left running ${stop_limit} s after SIGTERM: $left" || return 1
	[ ! -e "$demo_dir" ] || fail "$demo_dir is left" || return 1
	[ "$rc" = 0 ] || fail "the demo exited with status $rc after SIGTERM" || return 1
	wait "$restarted" 2>/dev/null
	grep '^demo: \(stopping\|killing\|stopped\)' "$work/demo.out" | sed 's/^/    /' >&2
	demo="" demo_dir="" restarted="" recorded=()
	return 0
}

ports_free() {
	local p
	for p in "$port_a" "$port_b" "${DEMO_ETCD_PORT:-2379}" "${DEMO_ETCD_PEER_PORT:-2380}"; do
		ss -Hltn "sport = :$p" | grep -q . && return 1
	done
	return 0
}

passed=0 failed=0
for ((run = 1; run <= runs; run++)); do
	t_stop=0
	if one_run; then
		passed=$((passed + 1))
		echo "run $run: ok in $((($(now_ms) - t_start) / 1000)) s (stopped everything in $t_stop ms)"
	else
		failed=$((failed + 1))
		echo "run $run: FAILED"
	fi
done
echo "$passed passed, $failed failed"
((failed == 0))
