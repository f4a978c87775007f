#!/usr/bin/env bash
# Runs every test of libiscsi's conformance suite (iscsi-test-cu) on its own,
# with a timeout, against a gateway it starts (memory LUN by default, or an
# RBD LUN with --backend rbd) or against given URLs (--url/--url2, e.g. to
# measure another target). Writes one line per test to $OUT/results.txt and
# fails when a test listed in baseline.txt does not pass, when a test times
# out, or when the daemon dies.
#
#   tests/conformance/run.sh [--backend memory|rbd] [--url URL [--url2 URL]]
#                            [--tests REGEX] [--update-baseline]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
backend=memory url="" url2="" filter="" update=0
while (($#)); do
	case "$1" in
	--backend) backend="$2"; shift 2 ;;
	--url) url="$2"; shift 2 ;;
	--url2) url2="$2"; shift 2 ;;
	--tests) filter="$2"; shift 2 ;;
	--update-baseline) update=1; shift ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

ini1=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test
ini2=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2
per_test_timeout=${CONFORMANCE_TIMEOUT:-120}
OUT="${OUT:-$(mktemp -d /tmp/rbdgw-conformance.XXXXXX)}"
mkdir -p "$OUT/logs"
baseline="$here/baseline-$backend.txt"

daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	if [ -n "${image:-}" ]; then
		rbd -c "$CEPH_CONF" rm --no-progress "rbd/$image" >/dev/null 2>&1
		rbd -c "$CEPH_CONF" rm --no-progress "rbd/$image-512" >/dev/null 2>&1
	fi
	if [ "$backend" = rbd ] && [ -n "${started_ceph:-}" ]; then
		"$root/deploy/microceph.sh" stop >/dev/null 2>&1
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$url" ]; then
	port1=${CONFORMANCE_PORT:-3290}
	port2=$((port1 + 1))
	iqn=iqn.2024-01.io.rbdgw:conformance
	cfg="$OUT/gateway.yaml"
	case "$backend" in
	memory)
		disk="{name: lun0, backend: memory, size: 134217728}"
		disk512="{name: lun2, backend: memory, size: 134217728, physical_block_size: 512}"
		;;
	rbd)
		if [ -z "${CEPH_CONF:-}" ]; then
			export CEPH_DIR="${CEPH_DIR:-$OUT/ceph}"
			"$root/deploy/microceph.sh" start || exit 1
			started_ceph=1
			eval "$("$root/deploy/microceph.sh" env)"
		fi
		image="conformance-$$"
		rbd -c "$CEPH_CONF" create --size 128M "rbd/$image" || exit 1
		rbd -c "$CEPH_CONF" create --size 128M "rbd/$image-512" || exit 1
		disk="{name: lun0, backend: rbd, pool: rbd, image: $image}"
		disk512="{name: lun2, backend: rbd, pool: rbd, image: $image-512, physical_block_size: 512}"
		;;
	*) echo "unknown backend $backend" >&2; exit 2 ;;
	esac
	cat >"$cfg" <<YAML
portals: ["127.0.0.1:$port1", "127.0.0.1:$port2"]
disks:
  - $disk
  - {name: readonly, backend: memory, size: 16777216, read_only: true}
  - $disk512
targets:
  - iqn: $iqn
    luns: [{id: 0, disk: lun0}, {id: 1, disk: readonly}, {id: 2, disk: lun2}]
    acls: [{initiator: "$ini1"}, {initiator: "$ini2"}]
YAML
	"$root/bin/rbdgw" -config "$cfg" -log-level warn >"$OUT/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 100); do
		iscsi-ls "iscsi://127.0.0.1:$port1" >/dev/null 2>&1 && break
		sleep 0.1
	done
	url="iscsi://127.0.0.1:$port1/$iqn/0"
	url2="iscsi://127.0.0.1:$port2/$iqn/0"
	# The ReadOnly suite needs a write-protected logical unit.
	url_ro="iscsi://127.0.0.1:$port1/$iqn/1"
	# GetLBAStatus.UnmapSingle (libiscsi 1.19) queries LBA i+1 but expects
	# the first descriptor at i+LBPPB, which SBC-3 forbids unless there is
	# one logical block per physical block: run it on such a LUN.
	url_512="iscsi://127.0.0.1:$port1/$iqn/2"
fi

mapfile -t tests < <(iscsi-test-cu --list | grep -E '^ALL\.[^.]+\.[^.]+$' | grep -E "${filter:-.}")
: >"$OUT/results.txt"
pass=0 fail=0 skip=0 tmo=0 crash=0
for t in "${tests[@]}"; do
	args=(-d -i "$ini1" -I "$ini2" -t "$t" "$url")
	case "$t" in
	ALL.MultipathIO.*) [ -n "$url2" ] && args+=("$url2") ;;
	ALL.ReadOnly.*) [ -n "${url_ro:-}" ] && args[${#args[@]}-1]="$url_ro" ;;
	ALL.GetLBAStatus.UnmapSingle) [ -n "${url_512:-}" ] && args[${#args[@]}-1]="$url_512" ;;
	esac
	log="$OUT/logs/$t.log"
	timeout -k 5 "$per_test_timeout" iscsi-test-cu "${args[@]}" >"$log" 2>&1
	rc=$?
	if ((rc == 124 || rc == 137)); then
		verdict=TIMEOUT; tmo=$((tmo + 1))
	elif ((rc > 128)) || ! grep -q "Run Summary" "$log"; then
		verdict=CRASH; crash=$((crash + 1))
	elif grep -qE '^ +tests +1 +1 +1 +0' "$log"; then
		if grep -q 'SKIPPED' "$log"; then verdict=SKIP; skip=$((skip + 1)); else verdict=PASS; pass=$((pass + 1)); fi
	else
		verdict=FAIL; fail=$((fail + 1))
	fi
	printf '%-8s %s\n' "$verdict" "$t" | tee -a "$OUT/results.txt"
	if [ -n "$daemon_pid" ] && ! kill -0 "$daemon_pid" 2>/dev/null; then
		echo "daemon died during $t; see $OUT/daemon.log" >&2
		tail -50 "$OUT/daemon.log" >&2
		exit 1
	fi
done

status=0
if ((update)); then
	awk '$1 == "PASS" { print $2 }' "$OUT/results.txt" | sort >"$baseline"
	echo "baseline written: $baseline"
elif [ -f "$baseline" ] && [ -z "$filter" ]; then
	regressions=$(comm -23 "$baseline" <(awk '$1 == "PASS" { print $2 }' "$OUT/results.txt" | sort))
	if [ -n "$regressions" ]; then
		echo "tests that passed before and do not pass now:" >&2
		echo "$regressions" >&2
		status=1
	fi
fi
((tmo || crash)) && status=1
echo "results: $OUT/results.txt (logs in $OUT/logs)"
echo "timeouts: $tmo, crashes: $crash"
echo "conformance: $pass passed, $fail failed, $skip skipped"
exit $status
