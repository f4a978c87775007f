#!/usr/bin/env bash
# Starts the gateway in the foreground with a 1 GiB memory-backed LUN on
# 127.0.0.1:3260 and prints its URL when it is ready. Ctrl-C or SIGTERM
# stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${DEMO_PORT:-3260}"
iqn="iqn.2024-01.io.rbdgw:demo"
dir="$(mktemp -d /tmp/rbdgw-demo.XXXXXX)"
cat >"$dir/gateway.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - {name: demo, backend: memory, size: 1073741824}
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: demo}]
    allow_any_initiator: true
YAML

pid=""
stop() {
	trap - INT TERM EXIT
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
	exit 0
}
trap stop INT TERM EXIT

"$root/bin/rbdgw" -config "$dir/gateway.yaml" &
pid=$!
for _ in $(seq 100); do
	if iscsi-ls "iscsi://127.0.0.1:$port" >/dev/null 2>&1; then
		echo
		echo "gateway ready: iscsi://127.0.0.1:$port/$iqn/0"
		echo "try: iscsi-ls -s iscsi://127.0.0.1:$port"
		echo "Ctrl-C stops it."
		break
	fi
	kill -0 "$pid" 2>/dev/null || { echo "gateway exited" >&2; exit 1; }
	sleep 0.1
done
wait "$pid"
