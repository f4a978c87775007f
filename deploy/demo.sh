#!/usr/bin/env bash
# Starts a demo in the foreground and prints its URLs when it is ready.
#
#   deploy/demo.sh            a two-gateway cluster: a micro Ceph cluster, an
#                             etcd server and two gateways on 127.0.0.1
#                             (ports 3260 and 3261) presenting one target
#                             with a 1 GiB RBD disk (make demo)
#   deploy/demo.sh --memory   one gateway on 127.0.0.1:3260 with a 1 GiB
#                             memory disk, no Ceph or etcd (make demo-memory)
#
# A gateway that exits (killed, crashed) does not end the cluster demo: it
# says so, prints the command that starts that gateway again, and etcd, Ceph
# and the other gateway keep serving; a gateway started again rejoins. etcd
# or a Ceph daemon exiting ends the demo.
#
# Ctrl-C, SIGTERM or SIGHUP to the script, or SIGTERM to its whole process
# group, stops everything it started, in order (gateways, etcd, Ceph), also
# a gateway the user started again with the printed command, and removes its
# directory (/tmp/rbdgw-demo.*), within 20 s. Every long-running child runs
# in its own session (setsid), so that only the script receives those
# signals and decides the order; a second signal while stopping is ignored.
#
# Environment: DEMO_PORT (first gateway port, 3260), DEMO_ETCD_PORT (2379)
# and DEMO_ETCD_PEER_PORT (2380) for the etcd server, CEPH_MEMSTORE_GIB.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${DEMO_PORT:-3260}"
iqn="iqn.2024-01.io.rbdgw:demo"
dir="" # made once the traps are set, so that it never outlives the script

# Messages go to fd 3, the script's stderr: once the demo is ready, fd 2
# goes to a file, so that bash's own notes about a killed child ("Killed
# ...") do not interleave with what the demo says about it.
exec 3>&2
log() { printf 'demo: %s\n' "$*" >&3; }
die() {
	log "$*"
	exit 1
}
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# ---- processes -------------------------------------------------------------

declare -A gw_pid=()  # gateway name -> pid of the gateway this script started
declare -A gw_ext=()  # gateway name -> pid of a gateway started again by the user
etcd_pid=""
helper=""             # session of the short-lived command running now
sleeper=""            # the monitor loop's sleep
ceph_started=""
mon="" osd=""         # Ceph daemons, from their pid files
stopping=""

# run CMD...: runs CMD in its own session and waits for it. A signal to the
# script interrupts the wait at once (a foreground command would delay the
# trap until it ends), and the cleanup stops the whole session, including
# what CMD started in other process groups (timeout(1) does).
run() {
	local rc=0
	setsid "$@" 3>&- &
	helper=$!
	wait "$helper" || rc=$?
	helper=""
	return "$rc"
}

# session_pids SID: the live processes of session SID.
session_pids() {
	local f stat state sid
	for f in /proc/[0-9]*/stat; do
		read -r stat 2>/dev/null <"$f" || continue
		read -r state _ _ sid _ <<<"${stat##*) }"
		[ "$sid" = "$1" ] && [ "$state" != Z ] && { f="${f#/proc/}"; echo "${f%/stat}"; }
	done
	return 0
}

# demo_procs [COMM...]: "pid comm" of the gateways, etcd and Ceph daemons of
# this demo, whoever started them: their command line names its directory.
demo_procs() {
	local f comm args want=" ${*:-rbdgw etcd ceph-mon ceph-osd ceph-mgr} "
	[ -n "$dir" ] || return 0
	for f in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$f/comm" || continue
		[[ "$want" == *" $comm "* ]] || continue
		args="$(tr '\0' ' ' 2>/dev/null <"$f/cmdline")" || continue
		[[ "$args" == *"$dir/"* ]] && echo "${f#/proc/} $comm"
	done
	return 0
}

# alive PID: PID runs. A zombie does not: a daemon killed here is reparented
# to init, which may take seconds to reap it.
alive() {
	local stat
	[ -n "$1" ] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat="${stat##*) }"
	[ "${stat%% *}" != Z ]
}

# stop_session SID: stops every process of session SID, also those it
# forks meanwhile: SIGTERM, SIGKILL after 0.5 s (they only start things,
# and the cleanup sweeps what they started).
stop_session() {
	local i sig=TERM pids
	for ((i = 0; i < 50; i++)); do
		pids="$(session_pids "$1")"
		[ -n "$pids" ] || return 0
		((i == 5)) && sig=KILL
		# shellcheck disable=SC2086
		kill -"$sig" $pids 2>/dev/null
		sleep 0.1
	done
}

# stop_pids SECONDS PID...: SIGTERM, then SIGKILL to what is left after
# SECONDS (at once with 0); returns when all are gone.
stop_pids() {
	local grace="$1" p left=("${@:2}") i
	shift
	(($#)) || return 0
	if ((grace > 0)); then
		kill -TERM "$@" 2>/dev/null
		for ((i = 0; i < grace * 10; i++)); do
			left=()
			for p in "$@"; do alive "$p" && left+=("$p"); done
			((${#left[@]})) || return 0
			sleep 0.1
		done
		log "killing ${left[*]}: still running after ${grace}s"
	fi
	kill -KILL "${left[@]}" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		left=()
		for p in "$@"; do alive "$p" && left+=("$p"); done
		((${#left[@]})) || return 0
		sleep 0.1
	done
}

# cleanup RC: stops everything this demo started and removes its directory.
# Idempotent: the EXIT trap calls it again after the signal trap did.
cleanup() {
	local rc="$1" p name pids rest t0 f
	[ -z "$stopping" ] || return 0
	stopping=1
	# The output may be a pipe whose reader is gone (make demo | tee, and
	# Ctrl-C ended tee too): a message must not end the cleanup.
	trap '' PIPE
	t0=$(date +%s%N)
	set +e
	exec 2>/dev/null
	trap 'log "already stopping; please wait"' INT TERM HUP
	alive "$sleeper" && kill "$sleeper" 2>/dev/null
	# A command still starting things (micro Ceph, a wait): its session.
	[ -n "$helper" ] && stop_session "$helper"
	# Gateways first, while etcd and Ceph still serve their shutdown.
	pids=()
	for name in "${!gw_pid[@]}"; do alive "${gw_pid[$name]}" && pids+=("${gw_pid[$name]}"); done
	while read -r p _; do [[ " ${pids[*]} " == *" $p "* ]] || pids+=("$p"); done < <(demo_procs rbdgw)
	((${#pids[@]})) && log "stopping gateways (pids ${pids[*]})"
	stop_pids 8 "${pids[@]}"
	for name in "${!gw_pid[@]}"; do wait "${gw_pid[$name]}" 2>/dev/null; done
	if alive "$etcd_pid"; then
		log "stopping etcd (pid $etcd_pid)"
		stop_pids 4 "$etcd_pid"
		wait "$etcd_pid" 2>/dev/null
	fi
	if [ -n "$ceph_started" ]; then
		# SIGKILL, as microceph.sh stop does (memstore data is throw-away),
		# to the daemons found by their command line, which names the demo's
		# ceph.conf: also one killed while it started, before its pid file.
		read -ra pids <<<"$(demo_procs ceph-mon ceph-osd ceph-mgr | cut -d' ' -f1 | tr '\n' ' ')"
		log "stopping micro Ceph${pids[*]:+ (pids ${pids[*]})}"
		stop_pids 0 "${pids[@]}"
	fi
	# Anything else of this demo still running.
	rest="$(demo_procs | cut -d' ' -f1 | tr '\n' ' ')"
	if [ -n "${rest// /}" ]; then
		log "killing leftover processes: $rest"
		# shellcheck disable=SC2086
		stop_pids 1 $rest
	fi
	# The directory goes: on a failure, what its logs said last.
	if ((rc != 0)) && [ -n "$dir" ]; then
		for f in "$dir"/etcd.log "$dir"/gateway.log "$dir"/gw-*.log; do
			[ -s "$f" ] || continue
			log "last lines of ${f##*/}:"
			tail -n 5 "$f" | sed 's/^/    /' >&3
		done
	fi
	[ -n "$dir" ] && rm -rf "$dir"
	[ -n "$ceph_started${gw_pid[*]}" ] && log "stopped everything in $((($(date +%s%N) - t0) / 1000000)) ms"
	exit "$rc"
}
# A stop the user asked for ends with status 0; output nobody reads any
# more (SIGPIPE) ends the demo too.
trap 'cleanup 0' INT TERM HUP
trap 'cleanup 1' PIPE
trap 'cleanup $?' EXIT
dir="$(mktemp -d /tmp/rbdgw-demo.XXXXXX)"

# join A B C: "A, B and C".
join() {
	local out="$1"
	shift
	while (($# > 1)); do
		out+=", $1"
		shift
	done
	(($#)) && out+=" and $1"
	echo "$out"
}

# describe_status STATUS: how a process ended, from its wait status.
describe_status() {
	local s="$1" sig
	if ((s > 128)); then
		sig="$(kill -l "$((s - 128))" 2>/dev/null || echo "$((s - 128))")"
		echo "killed by signal $((s - 128)) (SIG$sig)"
	else
		echo "exit status $s"
	fi
}

# nap: sleep one second, at once interrupted by a signal to the script.
nap() {
	sleep 1 3>&- &
	sleeper=$!
	wait "$sleeper" || true
	sleeper=""
}

# wait_portal PID PORT: wait until the gateway answers discovery.
wait_portal() {
	for _ in $(seq 300); do
		run timeout 5 iscsi-ls "iscsi://127.0.0.1:$2" >/dev/null 2>&1 && return 0
		alive "$1" || die "gateway on port $2 exited"
		sleep 0.1
	done
	die "gateway on port $2 did not answer"
}

# ---- memory demo -------------------------------------------------------------

memory_demo() {
	local gw rc=0
	port_free "$port" || die "port $port is in use (see DEMO_PORT)"
	cat >"$dir/gateway.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - {name: demo, backend: memory, size: 1073741824}
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: demo}]
    allow_any_initiator: true
YAML
	setsid "$root/bin/rbdgw" -config "$dir/gateway.yaml" >>"$dir/gateway.log" 2>&1 3>&- &
	gw=$!
	gw_pid[gateway]=$gw
	wait_portal "$gw" "$port"
	echo
	echo "gateway ready: iscsi://127.0.0.1:$port/$iqn/0   (pid $gw, log $dir/gateway.log)"
	echo "try: iscsi-ls -s iscsi://127.0.0.1:$port"
	echo "Ctrl-C stops it."
	exec 2>>"$dir/demo.log"
	while alive "$gw"; do nap; done
	wait "$gw" || rc=$?
	log "the gateway (pid $gw) exited: $(describe_status "$rc")"
	exit 1
}

# ---- cluster demo ------------------------------------------------------------

# gateway_cmd NAME: the command line that starts gateway NAME, for the user
# to paste: absolute paths, its log appended to.
gateway_cmd() {
	printf '%q -etcd %q -gateway %q -ceph-conf %q -api %q -api-token-file %q >>%q 2>&1' "$root/bin/rbdgw" "$ep" "$1" \
		"$dir/ceph/ceph.conf" "$(api_addr "$1")" "$dir/api-token" "$dir/$1.log"
}

# api_addr NAME: the REST API address of gateway NAME (gw-a on
# DEMO_API_PORT, 5000 by default; gw-b on the next port).
api_addr() {
	local p="${DEMO_API_PORT:-5000}"
	[ "$1" = gw-b ] && p=$((p + 1))
	echo "127.0.0.1:$p"
}

start_gateway() { # start_gateway NAME
	setsid "$root/bin/rbdgw" -etcd "$ep" -gateway "$1" -ceph-conf "$dir/ceph/ceph.conf" \
		-api "$(api_addr "$1")" -api-token-file "$dir/api-token" >>"$dir/$1.log" 2>&1 3>&- &
	gw_pid[$1]=$!
}

# watch_cluster: reports gateways that exit or come back; returns when etcd
# or a Ceph daemon exits, which ends the demo.
watch_cluster() {
	local name p rc
	while :; do
		for name in gw-a gw-b; do
			p="${gw_pid[$name]:-}"
			if [ -n "$p" ] && ! alive "$p"; then
				rc=0
				wait "$p" || rc=$?
				gw_pid[$name]=""
				gateway_exited "$name" "$p" "$(describe_status "$rc")"
			fi
			p="${gw_ext[$name]:-}"
			if [ -n "$p" ] && ! alive "$p"; then
				gw_ext[$name]=""
				gateway_exited "$name" "$p" "started outside the demo"
			fi
			if [ -z "${gw_pid[$name]:-}" ] && [ -z "${gw_ext[$name]:-}" ]; then
				p="$(gateway_proc "$name")"
				if [ -n "$p" ]; then
					gw_ext[$name]=$p
					log "$name is running again (pid $p); it rejoins the cluster; log in $dir/$name.log"
				fi
			fi
		done
		if ! alive "$etcd_pid"; then
			rc=0
			wait "$etcd_pid" || rc=$?
			log "etcd (pid $etcd_pid) exited: $(describe_status "$rc")"
			log "the cluster cannot run without etcd: stopping everything"
			return 1
		fi
		for p in "mon.a:$mon" "osd.0:$osd"; do
			if ! alive "${p#*:}"; then
				log "Ceph ${p%:*} (pid ${p#*:}) exited"
				log "the gateways cannot serve without Ceph: stopping everything"
				return 1
			fi
		done
		nap
	done
}

# gateway_proc NAME: the pid of gateway NAME of this demo running outside it.
gateway_proc() {
	local p
	while read -r p _; do
		[[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" == *" -gateway $1 "* ]] && echo "$p" && return
	done < <(demo_procs rbdgw)
	return 0
}

gateway_exited() { # gateway_exited NAME PID HOW
	local others=() name
	alive "$etcd_pid" && others+=(etcd)
	others+=(Ceph)
	for name in gw-a gw-b; do
		[ "$name" = "$1" ] && continue
		if alive "${gw_pid[$name]:-}" || alive "${gw_ext[$name]:-}"; then others+=("$name"); fi
	done
	echo
	echo "$1 exited (pid $2, $3); $(join "${others[@]}") keep serving."
	echo "to start $1 again, run in another terminal (Ctrl-C there stops it; log in $dir/$1.log):"
	echo "    $(gateway_cmd "$1")"
	echo
}

cluster_demo() {
	local etcd_port="${DEMO_ETCD_PORT:-2379}" peer_port="${DEMO_ETCD_PEER_PORT:-2380}"
	local port_b=$((port + 1)) admin gwcli api_a api_b token i
	api_a="$(api_addr gw-a)" api_b="$(api_addr gw-b)"
	command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server)"
	for p in "$port" "$port_b" "$etcd_port" "$peer_port" "${api_a##*:}" "${api_b##*:}"; do
		port_free "$p" || die "port $p is in use (see DEMO_PORT, DEMO_ETCD_PORT, DEMO_ETCD_PEER_PORT, DEMO_API_PORT)"
	done
	ep="127.0.0.1:$etcd_port"
	admin="$root/bin/rbdgw-admin" gwcli="$root/bin/gwcli"
	[ -x "$admin" ] && [ -x "$gwcli" ] || die "bin/rbdgw-admin and bin/gwcli are missing: run make demo (it builds them)"

	log "starting micro Ceph with a mgr (about 10 s)"
	ceph_started=1
	CEPH_MGR=1 CEPH_DIR="$dir/ceph" run "$root/deploy/microceph.sh" start >/dev/null || die "micro Ceph did not start"
	export CEPH_CONF="$dir/ceph/ceph.conf"

	log "starting etcd on $ep"
	setsid etcd --name demo --data-dir "$dir/etcd" \
		--listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "demo=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 3>&- &
	etcd_pid=$!
	for _ in $(seq 100); do
		run "$admin" -etcd "$ep" -timeout 1s show >/dev/null 2>&1 && break
		alive "$etcd_pid" || die "etcd exited"
		sleep 0.2
	done

	# The gateways start undefined: their REST APIs answer at once, and
	# the cluster is defined through them with gwcli, as an admin would.
	log "starting gateways gw-a (API $api_a) and gw-b (API $api_b)"
	start_gateway gw-a
	start_gateway gw-b
	for ((i = 0; i < 150; i++)); do
		[ -s "$dir/api-token" ] && curl -fsS -o /dev/null "http://$api_a/api/v1/healthz" 2>/dev/null && break
		alive "${gw_pid[gw-a]}" || die "gw-a exited"
		sleep 0.2
	done
	token="$(cat "$dir/api-token" 2>/dev/null)" || die "no API token was written to $dir/api-token"
	export RBDGW_API_URL="http://$api_a" RBDGW_API_TOKEN="$token"

	log "defining the cluster with gwcli"
	{
		run "$gwcli" /iscsi-targets create "$iqn" &&
			run "$gwcli" "/iscsi-targets/$iqn/gateways" create gw-a "127.0.0.1:$port" &&
			run "$gwcli" "/iscsi-targets/$iqn/gateways" create gw-b "127.0.0.1:$port_b" &&
			run "$gwcli" /disks create pool=rbd image=demo size=1G &&
			run "$gwcli" "/iscsi-targets/$iqn/disks" add rbd/demo &&
			run "$gwcli" "/iscsi-targets/$iqn/hosts" auth disable_acl
	} >>"$dir/gwcli.log" 2>&1 || die "cannot define the cluster through the API; see $dir/gwcli.log"
	run "$admin" -etcd "$ep" -timeout 60s wait -live gw-a -live gw-b -owned >/dev/null ||
		die "gateways did not come up"
	wait_portal "${gw_pid[gw-a]}" "$port"
	wait_portal "${gw_pid[gw-b]}" "$port_b"
	mon="$(cat "$dir/ceph/run/mon.a.pid")"
	osd="$(cat "$dir/ceph/run/osd.0.pid")"

	echo
	echo "cluster ready: two gateways present $iqn"
	echo "  gw-a  pid ${gw_pid[gw-a]}  portal 127.0.0.1:$port  iscsi://127.0.0.1:$port/$iqn/0  API http://$api_a"
	echo "  gw-b  pid ${gw_pid[gw-b]}  portal 127.0.0.1:$port_b  iscsi://127.0.0.1:$port_b/$iqn/0  API http://$api_b"
	echo "  etcd  pid $etcd_pid  $ep;  ceph-mon pid $mon, ceph-osd pid $osd"
	echo "env:      export RBDGW_API_URL=http://$api_a RBDGW_API_TOKEN=$token CEPH_CONF=$CEPH_CONF"
	echo "try:      iscsi-ls -s iscsi://127.0.0.1:$port"
	echo "          $gwcli                  (the shell; Tab completes; exit or Ctrl-D leaves)"
	echo "          $gwcli ls /"
	echo "          curl -H \"Authorization: Bearer \$RBDGW_API_TOKEN\" \$RBDGW_API_URL/api/v1/gateways"
	echo "          curl http://$api_a/metrics"
	echo "failover: kill -9 ${gw_pid[gw-a]}   (gw-a dies; a multipath initiator carries on through gw-b,"
	echo "          which takes the disk over within seconds; the demo keeps running and"
	echo "          prints the command that starts gw-a again, which then rejoins)"
	echo "logs:     $dir"
	echo "Ctrl-C stops everything."
	exec 2>>"$dir/demo.log"
	watch_cluster
}

case "${1:-}" in
--memory) memory_demo ;;
"") cluster_demo ;;
*)
	echo "usage: $0 [--memory]" >&2
	exit 2
	;;
esac
