#!/usr/bin/env bash
# tgt-rbd.sh: Debian's tgtd with its librbd backing store (tgt-rbd), the
# reference RBD iSCSI target for benchmarks. Starts tgtd on 127.0.0.1 with
# one target whose LUN 1 is an RBD image.
#
#   deploy/bench/tgt-rbd.sh POOL/IMAGE                 print the URL, serve until Ctrl-C
#   deploy/bench/tgt-rbd.sh POOL/IMAGE CMD [ARGS...]   run CMD with TGT_RBD_URL set, then stop
#
# The cluster is the one of $CEPH_CONF (see deploy/microceph.sh env); tgt
# connects as client.admin unless TGT_RBD_ID says otherwise. tgt's bs_rbd
# does synchronous librbd calls from its I/O threads (16 by default), with
# the rbd cache setting of the ceph.conf (microceph.sh turns it off).
#
# tgtd runs with its own control port and IPC socket in a private directory,
# so it does not clash with a system tgtd or another instance (e.g.
# tgt-null.sh on 3261). tgtd ignores SIGTERM, so on exit the script asks it
# to shut down through tgtadm and kills it by PID if it has not gone.
#
# Tunables (environment):
#   TGT_RBD_PORT      iSCSI portal port on 127.0.0.1              (3262)
#   TGT_RBD_IQN       target name    (iqn.2001-04.com.example:tgt-rbd)
#   TGT_RBD_ID        Ceph client id                             (admin)
#   TGT_THREADS       tgtd I/O threads (-t)                (tgtd default)
set -euo pipefail

(($# >= 1)) || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
image="$1"
shift
[[ "$image" == */* ]] || { echo "tgt-rbd: want POOL/IMAGE, got $image" >&2; exit 2; }
[[ -n "${CEPH_CONF:-}" && -r "$CEPH_CONF" ]] || { echo "tgt-rbd: CEPH_CONF is not set (eval \"\$(deploy/microceph.sh env)\")" >&2; exit 1; }

port="${TGT_RBD_PORT:-3262}"
control="$port"
iqn="${TGT_RBD_IQN:-iqn.2001-04.com.example:tgt-rbd}"
url="iscsi://127.0.0.1:$port/$iqn/1"

for tool in tgtd tgtadm ss; do
	command -v "$tool" >/dev/null || { echo "tgt-rbd: $tool not found (apt-get install tgt tgt-rbd iproute2)" >&2; exit 1; }
done
[ -e /usr/lib/tgt/backing-store/bs_rbd.so ] || { echo "tgt-rbd: tgt's rbd backing store is missing (apt-get install tgt-rbd)" >&2; exit 1; }
if ss -Hltn "sport = :$port" | grep -q .; then
	echo "tgt-rbd: port $port is already in use" >&2
	exit 1
fi

dir="$(mktemp -d /tmp/tgt-rbd.XXXXXX)"
export TGT_IPC_SOCKET="$dir/socket" # tgtd and tgtadm append ".$control"
pid=""

adm() { tgtadm -C "$control" "$@"; }

fail() {
	echo "tgt-rbd: $*" >&2
	sed 's/^/  tgtd: /' "$dir/tgtd.log" >&2 || true
	exit 1
}

stop() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		adm --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1 || true
		adm --mode system --op delete >/dev/null 2>&1 || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

args=(-f -C "$control" --iscsi "portal=127.0.0.1:$port")
[[ -n "${TGT_THREADS:-}" ]] && args+=(-t "$TGT_THREADS")
tgtd "${args[@]}" >"$dir/tgtd.log" 2>&1 &
pid=$!

for i in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || fail "tgtd exited at start"
	if adm --mode sys --op show >/dev/null 2>&1 && ss -Hltn "sport = :$port" | grep -q .; then
		break
	fi
	((i < 100)) || fail "tgtd did not come up"
	sleep 0.1
done

adm --lld iscsi --mode target --op new --tid 1 --targetname "$iqn" || fail "cannot create the target"
adm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --bstype rbd --backing-store "$image" \
	--bsopts "conf=$CEPH_CONF;id=${TGT_RBD_ID:-admin}" || fail "cannot add the rbd LUN $image"
adm --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL || fail "cannot open the target to initiators"

if (($# > 0)); then
	TGT_RBD_URL="$url" "$@"
else
	echo "$url"
	echo "tgt-rbd: tgtd pid $pid serving $image; Ctrl-C to stop" >&2
	wait "$pid"
fi
