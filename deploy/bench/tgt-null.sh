#!/usr/bin/env bash
# tgt-null.sh: the reference target for benchmarks. Starts Debian's tgtd on
# 127.0.0.1 with one target whose LUN 1 is tgt's "null" backing store (every
# command succeeds without touching any storage), so a benchmark against it
# measures the iSCSI target itself.
#
#   deploy/bench/tgt-null.sh                 print the iSCSI URL, serve until Ctrl-C
#   deploy/bench/tgt-null.sh CMD [ARGS...]   run CMD with TGT_NULL_URL set, then stop
#
# e.g.  deploy/bench/tgt-null.sh sh -c 'deploy/bench/qemu-bench.sh tgt="$TGT_NULL_URL"'
#
# tgtd runs with its own control port and IPC socket in a private directory,
# so it does not clash with a system tgtd or another instance. tgtd ignores
# SIGTERM, so on exit the script asks it to shut down through tgtadm and
# kills it by PID if it has not gone within a few seconds.
#
# tgt's null store reports a fixed size of 1 TiB (it cannot be set); a
# benchmark only touches the first few GiB.
#
# Tunables (environment):
#   TGT_PORT           iSCSI portal port on 127.0.0.1            (3261)
#   TGT_CONTROL_PORT   tgtd management channel number       (TGT_PORT)
#   TGT_IQN            target name   (iqn.2001-04.com.example:tgt-null)
#   TGT_THREADS        tgtd I/O threads (-t)                (tgtd default)
set -euo pipefail

port="${TGT_PORT:-3261}"
control="${TGT_CONTROL_PORT:-$port}"
iqn="${TGT_IQN:-iqn.2001-04.com.example:tgt-null}"
url="iscsi://127.0.0.1:$port/$iqn/1"

for tool in tgtd tgtadm ss; do
	command -v "$tool" >/dev/null || { echo "tgt-null: $tool not found (apt-get install tgt iproute2)" >&2; exit 1; }
done
if ss -Hltn "sport = :$port" | grep -q .; then
	echo "tgt-null: port $port is already in use" >&2
	exit 1
fi

dir="$(mktemp -d /tmp/tgt-null.XXXXXX)"
export TGT_IPC_SOCKET="$dir/socket" # tgtd and tgtadm append ".$control"
pid=""

adm() { tgtadm -C "$control" "$@"; }

# fail reports why tgtd could not be set up, with its log.
fail() {
	echo "tgt-null: $*" >&2
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

# Wait until tgtd answers on its control socket and listens on the portal.
for i in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || fail "tgtd exited at start"
	if adm --mode sys --op show >/dev/null 2>&1 && ss -Hltn "sport = :$port" | grep -q .; then
		break
	fi
	((i < 100)) || fail "tgtd did not come up"
	sleep 0.1
done

adm --lld iscsi --mode target --op new --tid 1 --targetname "$iqn" || fail "cannot create the target"
adm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --bstype null --backing-store null ||
	fail "cannot add the null LUN"
adm --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL || fail "cannot open the target to initiators"

if (($# > 0)); then
	TGT_NULL_URL="$url" "$@"
else
	echo "$url"
	echo "tgt-null: tgtd pid $pid serving; Ctrl-C to stop" >&2
	wait "$pid"
fi
