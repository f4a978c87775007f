# tgt-lib.sh: sourced by tgt-null.sh and tgt-rbd.sh. Runs Debian's tgtd on
# 127.0.0.1 with its own control port and IPC socket in a private
# directory, so it does not clash with a system tgtd or another instance.
# tgtd ignores SIGTERM, so on exit it is asked to shut down through tgtadm
# and killed by PID if it has not gone within a few seconds.
#
# The sourcing script sets: name (for messages), port, control, iqn, and
# optionally TGT_THREADS; then calls tgt_start, adds its LUN 1 with adm,
# and calls tgt_serve URLVAR "$@".

tgt_url() { echo "iscsi://127.0.0.1:$port/$iqn/1"; }

adm() { tgtadm -C "$control" "$@"; }

# fail reports why tgtd could not be set up, with its log.
fail() {
	echo "$name: $*" >&2
	sed 's/^/  tgtd: /' "$dir/tgtd.log" >&2 || true
	exit 1
}

tgt_stop() {
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

# tgt_start checks the tools and the port, starts tgtd and creates target 1.
tgt_start() {
	local tool i
	for tool in tgtd tgtadm ss; do
		command -v "$tool" >/dev/null || { echo "$name: $tool not found (apt-get install tgt iproute2)" >&2; exit 1; }
	done
	if ss -Hltn "sport = :$port" | grep -q .; then
		echo "$name: port $port is already in use" >&2
		exit 1
	fi
	dir="$(mktemp -d "/tmp/$name.XXXXXX")"
	export TGT_IPC_SOCKET="$dir/socket" # tgtd and tgtadm append ".$control"
	pid=""
	trap tgt_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local args=(-f -C "$control" --iscsi "portal=127.0.0.1:$port")
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
}

# tgt_serve opens the target to every initiator, then runs the given
# command with the URL in the variable named by $1 (and tgtd's PID in
# TGT_PID), or serves until Ctrl-C.
tgt_serve() {
	local var="$1"
	shift
	adm --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL || fail "cannot open the target to initiators"
	if (($# > 0)); then
		env "$var=$(tgt_url)" "TGT_PID=$pid" "$@"
	else
		tgt_url
		echo "$name: tgtd pid $pid serving; Ctrl-C to stop" >&2
		wait "$pid"
	fi
}
