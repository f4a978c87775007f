#!/usr/bin/env bash
# Starts a demo in the foreground and prints its URLs when it is ready.
# Ctrl-C or SIGTERM stops everything it started.
#
#   deploy/demo.sh            a two-gateway cluster: a micro Ceph cluster, an
#                             etcd server and two gateways on 127.0.0.1
#                             (ports 3260 and 3261) presenting one target
#                             with a 1 GiB RBD disk (make demo)
#   deploy/demo.sh --memory   one gateway on 127.0.0.1:3260 with a 1 GiB
#                             memory disk, no Ceph or etcd (make demo-memory)
#
# Environment: DEMO_PORT (first gateway port, 3260), DEMO_ETCD_PORT (2379)
# and DEMO_ETCD_PEER_PORT (2380) for the etcd server, CEPH_MEMSTORE_GIB.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${DEMO_PORT:-3260}"
iqn="iqn.2024-01.io.rbdgw:demo"
dir="$(mktemp -d /tmp/rbdgw-demo.XXXXXX)"

log() { printf 'demo: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# Processes this script started, stopped in reverse order on exit.
pids=()
ceph_started=""
stop() {
	local rc="$1" i p
	trap - INT TERM EXIT
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		p="${pids[i]}"
		kill "$p" 2>/dev/null || true
		# A gateway that does not end in 15 s is killed.
		for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$ceph_started" ]; then
		CEPH_DIR="$dir/ceph" "$root/deploy/microceph.sh" stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

# wait_portal PID PORT: wait until the gateway answers discovery.
wait_portal() {
	for _ in $(seq 300); do
		iscsi-ls "iscsi://127.0.0.1:$2" >/dev/null 2>&1 && return 0
		kill -0 "$1" 2>/dev/null || die "gateway on port $2 exited; see $dir/*.log"
		sleep 0.1
	done
	die "gateway on port $2 did not answer"
}

memory_demo() {
	cat >"$dir/gateway.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - {name: demo, backend: memory, size: 1073741824}
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: demo}]
    allow_any_initiator: true
YAML
	"$root/bin/rbdgw" -config "$dir/gateway.yaml" &
	pids+=($!)
	wait_portal "${pids[0]}" "$port"
	echo
	echo "gateway ready: iscsi://127.0.0.1:$port/$iqn/0"
	echo "try: iscsi-ls -s iscsi://127.0.0.1:$port"
	echo "Ctrl-C stops it."
	wait "${pids[0]}"
}

cluster_demo() {
	local etcd_port="${DEMO_ETCD_PORT:-2379}" peer_port="${DEMO_ETCD_PEER_PORT:-2380}"
	local port_b=$((port + 1)) admin ep
	command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server)"
	for p in "$port" "$port_b" "$etcd_port" "$peer_port"; do
		port_free "$p" || die "port $p is in use (see DEMO_PORT, DEMO_ETCD_PORT, DEMO_ETCD_PEER_PORT)"
	done
	ep="127.0.0.1:$etcd_port"

	# The admin tool needs no Ceph headers; build it when make did not.
	admin="$root/bin/rbdgw-admin"
	if [ ! -x "$admin" ]; then
		admin="$dir/rbdgw-admin"
		(cd "$root" && go build -o "$admin" ./gateway/cmd/rbdgw-admin) || die "cannot build rbdgw-admin"
	fi

	log "starting micro Ceph (about 5 s)"
	ceph_started=1
	CEPH_DIR="$dir/ceph" "$root/deploy/microceph.sh" start >/dev/null || die "micro Ceph did not start"
	export CEPH_CONF="$dir/ceph/ceph.conf"

	log "starting etcd on $ep"
	etcd --name demo --data-dir "$dir/etcd" \
		--listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "demo=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		"$admin" -etcd "$ep" -timeout 1s show >/dev/null 2>&1 && break
		kill -0 "${pids[0]}" 2>/dev/null || die "etcd exited; see $dir/etcd.log"
		sleep 0.2
	done

	log "defining the cluster"
	{
		"$admin" -etcd "$ep" gateway put gw-a -portal "127.0.0.1:$port"
		"$admin" -etcd "$ep" gateway put gw-b -portal "127.0.0.1:$port_b"
		"$admin" -etcd "$ep" disk put rbd/demo -size 1G
		"$admin" -etcd "$ep" target put "$iqn" -gateway gw-a -gateway gw-b -allow-any-initiator
		"$admin" -etcd "$ep" lun put "$iqn" 0 rbd/demo
	} >/dev/null || die "cannot write the configuration"

	log "starting gateways gw-a (127.0.0.1:$port) and gw-b (127.0.0.1:$port_b)"
	for gw in gw-a gw-b; do
		"$root/bin/rbdgw" -etcd "$ep" -gateway "$gw" >"$dir/$gw.log" 2>&1 &
		pids+=($!)
	done
	"$admin" -etcd "$ep" -timeout 60s wait -live gw-a -live gw-b -owned >/dev/null ||
		die "gateways did not come up; see $dir/gw-*.log"
	wait_portal "${pids[1]}" "$port"
	wait_portal "${pids[2]}" "$port_b"

	echo
	echo "cluster ready: two gateways present $iqn"
	echo "  gw-a  portal 127.0.0.1:$port    iscsi://127.0.0.1:$port/$iqn/0"
	echo "  gw-b  portal 127.0.0.1:$port_b    iscsi://127.0.0.1:$port_b/$iqn/0"
	echo "try:    iscsi-ls -s iscsi://127.0.0.1:$port"
	echo "        $admin -etcd $ep show"
	echo "env:    export CEPH_CONF=$CEPH_CONF   (logs in $dir)"
	echo "Ctrl-C stops everything."
	# Runs until a signal, or until a gateway or etcd exits.
	wait -n "${pids[@]}" || true
	log "a process exited; stopping"
}

case "${1:-}" in
--memory) memory_demo ;;
"") cluster_demo ;;
*)
	echo "usage: $0 [--memory]" >&2
	exit 2
	;;
esac
