#!/usr/bin/env bash
# Installs what building, running and testing the gateway needs, when it is
# missing: Debian packages (Ceph client and daemons, etcd, the libiscsi
# initiator tools, qemu-img, tgt for comparison) and the Go modules.
set -euo pipefail

packages=(
	librbd-dev librados-dev ceph-mon ceph-osd ceph-mgr ceph-common
	etcd-server etcd-client
	libiscsi-bin qemu-utils qemu-block-extra sg3-utils
	tgt tgt-rbd tmux iproute2 curl
)
# promtool (tests/observe/demo-check.sh, the alert rule tests) comes with
# Debian's prometheus package; a promtool already on PATH will do.
command -v promtool >/dev/null || packages+=(prometheus)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cd "$(dirname "$0")/.."
go mod download
