#!/usr/bin/env bash
# Runs a command with a micro Ceph cluster on 127.0.0.1 (for the librbd tests)
# and stops the cluster afterwards, whatever the command's outcome.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# A mgr, so that pool statistics (the API's /pools, gwcli /cluster) are real.
export CEPH_MGR="${CEPH_MGR:-1}"
export CEPH_DIR="${CEPH_DIR:-$(mktemp -d /tmp/rbdgw-test-ceph.XXXXXX)}"
cleanup() { "$here/microceph.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
"$here/microceph.sh" start
eval "$("$here/microceph.sh" env)"
"$@"
