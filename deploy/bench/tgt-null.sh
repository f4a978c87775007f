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

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tgt-lib.sh
. "$here/tgt-lib.sh"

name=tgt-null
port="${TGT_PORT:-3261}"
control="${TGT_CONTROL_PORT:-$port}"
iqn="${TGT_IQN:-iqn.2001-04.com.example:tgt-null}"

tgt_start
adm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --bstype null --backing-store null ||
	fail "cannot add the null LUN"
tgt_serve TGT_NULL_URL "$@"
