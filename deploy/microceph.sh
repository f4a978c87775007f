#!/usr/bin/env bash
# microceph.sh: a throw-away Ceph 16.2 cluster on 127.0.0.1 for development,
# tests and benchmarks: one mon, one memstore OSD, cephx on, pool "rbd".
#
#   deploy/microceph.sh start    start (or reuse) the cluster; prints its env line
#   deploy/microceph.sh stop     stop its daemons by PID and delete its directory
#   deploy/microceph.sh status   exit 0 and print "ceph -s" when it is usable
#   deploy/microceph.sh env      print "export CEPH_CONF=..." for eval
#
# Everything (conf, keyrings, mon store, pid files, sockets, logs) lives in
# $CEPH_DIR (default /tmp/rbdgw-ceph), so several clusters can run side by
# side and nothing touches /etc/ceph, /var/lib/ceph or /var/run/ceph.
#
# Tunables (environment):
#   CEPH_DIR              cluster directory                 (/tmp/rbdgw-ceph)
#   CEPH_MON_PORT         mon msgr2 port        (first free port from 3300)
#   CEPH_PORT_MIN/MAX     OSD bind port range                  (17100-17299)
#   CEPH_MEMSTORE_GIB     memstore capacity in GiB                        (8)
#   CEPH_MGR=1            also start a ceph-mgr (not needed for RBD I/O)
#   CEPH_KEEP_DIR=1       "stop" keeps the directory (logs) instead of deleting it
#
# The memstore OSD keeps all data in RAM and its RSS grows by about twice
# the data written; 8 GiB of reported capacity stays well inside a 24 GiB
# host while leaving room for multi-GiB benchmark images. Data is lost when
# the OSD stops; "start" on a dead cluster rebuilds it from scratch.
set -euo pipefail

D="${CEPH_DIR:-/tmp/rbdgw-ceph}"
CONF="$D/ceph.conf"
MARKER="$D/.rbdgw-microceph"
MEMSTORE_GIB="${CEPH_MEMSTORE_GIB:-8}"
PORT_MIN="${CEPH_PORT_MIN:-17100}"
PORT_MAX="${CEPH_PORT_MAX:-17299}"

log() { printf 'microceph: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }

need_tools() {
	local t missing=()
	for t in ceph ceph-mon ceph-osd ceph-authtool monmaptool rados rbd uuidgen timeout; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (apt-get install ceph-mon ceph-osd ceph-common)"
}

# pids of this cluster's daemons, from their pid files, that are still alive.
live_pids() {
	local f p
	for f in "$D"/run/*.pid; do
		[ -e "$f" ] || continue
		p="$(cat "$f" 2>/dev/null || true)"
		[[ "$p" =~ ^[0-9]+$ ]] || continue
		kill -0 "$p" 2>/dev/null && echo "$p"
	done
	return 0
}

alive() { # alive NAME: the daemon's pid file names a live process
	local p
	p="$(cat "$D/run/$1.pid" 2>/dev/null || true)"
	[[ "$p" =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null
}

usable() {
	[ -f "$MARKER" ] && [ -f "$D/ready" ] && alive mon.a && alive osd.0 || return 1
	# A rados round trip proves mon, OSD, cephx and the pool all work.
	timeout 15 rados -c "$CONF" -p rbd stat rbdgw-ready >/dev/null 2>&1
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_mon_port() {
	if [ -n "${CEPH_MON_PORT:-}" ]; then
		port_free "$CEPH_MON_PORT" || die "CEPH_MON_PORT $CEPH_MON_PORT is in use"
		echo "$CEPH_MON_PORT"
		return
	fi
	local p
	for p in $(seq 3300 3399); do
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free mon port in 3300-3399; set CEPH_MON_PORT"
}

write_conf() {
	local fsid="$1" port="$2"
	cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = $PORT_MIN
ms bind port max = $PORT_MAX
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
crash dir = $D/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
# iSCSI gateway recommendation: a dead lock owner's watch expires in 15 s.
osd client watch timeout = 15

[mon]
mon data = $D/mon/\$cluster-\$id
mon cluster log file = $D/log/cluster.log
# Commit map changes after 0.1 s instead of 1 s: starting the cluster and
# creating pools and images is a chain of map changes.
paxos propose interval = 0.1

[mgr]
mgr data = $D/mgr/\$cluster-\$id

[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((MEMSTORE_GIB * 1024 * 1024 * 1024))

[client]
# Gateways must not cache (several may serve one image); benchmarks of
# other clients (qemu, tgt) use the same setting to be comparable.
rbd cache = false
# Per-process sockets and one shared log: many clients may run at once.
admin socket = $D/run/\$name.\$pid.asok
log file = $D/log/client.log
EOF
}

cmd_start() {
	need_tools
	[ "$(id -u)" -eq 0 ] || log "warning: not root; daemons may fail to start"
	if usable; then
		log "already running in $D"
		cmd_env
		return 0
	fi
	if [ -f "$MARKER" ]; then
		log "stale cluster in $D: rebuilding"
		stop_daemons
		wipe_dir
	fi
	local start_ns port fsid uuid key id
	start_ns=$(date +%s%N)
	mkdir -p "$D"
	[ -z "$(ls -A "$D")" ] || die "$D is not empty and is not a microceph directory"
	mkdir -p "$D"/{mon,osd,mgr,run,log,crash}
	touch "$MARKER"
	# A failed start leaves no daemon behind; the logs stay for a look.
	trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping its daemons (logs in $D/log)"; stop_daemons; fi' EXIT

	port="$(pick_mon_port)"
	fsid="$(uuidgen)"
	write_conf "$fsid" "$port"

	ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool "$D/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null

	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$D/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
	ceph-mon -c "$CONF" -i a
	ceph_cli mon stat >/dev/null || die "mon did not come up (see $D/log/mon.a.log)"

	if [ "${CEPH_MGR:-0}" = 1 ]; then
		command -v ceph-mgr >/dev/null || die "CEPH_MGR=1 but ceph-mgr is not installed"
		mkdir -p "$D/mgr/ceph-x"
		ceph_cli auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
			-o "$D/mgr/ceph-x/keyring"
		ceph-mgr -c "$CONF" -i x --keyring "$D/mgr/ceph-x/keyring"
	fi

	# The pool is created before the OSD boots: the mon only records it, and
	# the PGs are created as soon as the OSD joins, which saves seconds.
	ceph_cli osd pool create rbd 8 8 >/dev/null 2>&1 || die "pool create failed"
	ceph_cli osd pool application enable rbd rbd >/dev/null 2>&1 || die "pool application enable failed"

	uuid="$(uuidgen)"
	key="$(ceph-authtool --gen-print-key)"
	id="$(echo "{\"cephx_secret\": \"$key\"}" | ceph_cli osd new "$uuid" -i -)"
	[ "$id" = 0 ] || die "unexpected OSD id '$id'"
	mkdir -p "$D/osd/ceph-$id"
	ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" --key "$key" >/dev/null 2>&1 ||
		die "ceph-osd --mkfs failed (see $D/log/osd.$id.log)"
	ceph-authtool --create-keyring "$D/osd/ceph-$id/keyring" -n "osd.$id" --add-key "$key" >/dev/null
	ceph-osd -c "$CONF" -i "$id" --keyring "$D/osd/ceph-$id/keyring" 2>/dev/null

	# rbd pool init blocks until the PGs are active, i.e. until the OSD is up.
	timeout 60 rbd -c "$CONF" pool init rbd || die "rbd pool init failed (see $D/log/osd.$id.log)"
	timeout 30 rados -c "$CONF" -p rbd put rbdgw-ready /etc/hostname || die "smoke write failed"
	touch "$D/ready"
	trap - EXIT
	log "ready in $(((($(date +%s%N) - start_ns) / 1000000)))ms (mon port $port, memstore ${MEMSTORE_GIB} GiB, dir $D)"
	cmd_env
}

stop_daemons() {
	local pids p i
	pids="$(live_pids)"
	[ -n "$pids" ] || return 0
	# memstore data is throw-away, so SIGKILL is safe and saves ~2 s per daemon.
	# shellcheck disable=SC2086
	kill -9 $pids 2>/dev/null || true
	for p in $pids; do
		for i in $(seq 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
	done
}

wipe_dir() {
	# Delete only what this script creates: CEPH_DIR may be a shared parent.
	rm -rf "$D"/{mon,osd,mgr,run,log,crash} "$D"/ceph.conf "$D"/keyring "$D"/monmap "$D"/ready "$MARKER"
	rmdir "$D" 2>/dev/null || true
}

cmd_stop() {
	if [ ! -f "$MARKER" ]; then
		log "no cluster in $D"
		return 0
	fi
	stop_daemons
	if [ "${CEPH_KEEP_DIR:-0}" = 1 ]; then
		rm -f "$D/ready"
		log "stopped; kept $D"
	else
		wipe_dir
		log "stopped; removed $D"
	fi
}

cmd_status() {
	if ! usable; then
		log "not running (or not usable) in $D"
		return 1
	fi
	echo "dir: $D"
	echo "pids: $(live_pids | tr '\n' ' ')"
	ceph_cli -s 2>/dev/null || true
}

cmd_env() {
	[ -f "$CONF" ] || die "no cluster in $D (run: $0 start)"
	printf 'export CEPH_CONF=%q\n' "$CONF"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
