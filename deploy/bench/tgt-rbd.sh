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

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tgt-lib.sh
. "$here/tgt-lib.sh"

name=tgt-rbd
port="${TGT_RBD_PORT:-3262}"
control="$port"
iqn="${TGT_RBD_IQN:-iqn.2001-04.com.example:tgt-rbd}"

[ -e /usr/lib/tgt/backing-store/bs_rbd.so ] || { echo "tgt-rbd: tgt's rbd backing store is missing (apt-get install tgt-rbd)" >&2; exit 1; }
tgt_start
adm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --bstype rbd --backing-store "$image" \
	--bsopts "conf=$CEPH_CONF;id=${TGT_RBD_ID:-admin}" || fail "cannot add the rbd LUN $image"
tgt_serve TGT_RBD_URL "$@"
