# rbdgw-lib.sh: sourced by the benchmark scripts. rbdgw_start writes a
# standalone configuration with one disk, named bench, exported as LUN 0 of a target that
# admits any initiator, starts bin/rbdgw on it in the background and waits
# until its portal answers discovery; the gateway's PID is left in
# rbdgw_pid. rbdgw_stop_all stops every gateway started so far (call it
# from the caller's exit trap).
#
#   rbdgw_start DIR NAME PORT IQN 'DISK-YAML' [rbdgw flags...]
#   e.g. rbdgw_start "$dir" gw 3280 "$iqn" '{name: bench, backend: memory, size: 1073741824}' -log-level warn

rbdgw_start() {
	local dir="$1" name="$2" port="$3" iqn="$4" disk="$5"
	shift 5
	cat >"$dir/$name.yaml" <<YAML
portals: ["127.0.0.1:$port"]
disks:
  - $disk
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: bench}]
    allow_any_initiator: true
YAML
	"$root/bin/rbdgw" -config "$dir/$name.yaml" "$@" &
	rbdgw_pid=$!
	rbdgw_pids+=("$rbdgw_pid")
	for _ in $(seq 100); do
		iscsi-ls "iscsi://127.0.0.1:$port" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "gateway $name on port $port did not start" >&2
	return 1
}

rbdgw_pids=()
rbdgw_stop_all() {
	local p
	for p in "${rbdgw_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${rbdgw_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
