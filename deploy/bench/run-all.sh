#!/usr/bin/env bash
# Runs every benchmark: Go micro-benchmarks of the hot paths, then qemu-img
# bench against this gateway and, in the same run, the references.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
go test -tags pacific -run '^$' -bench . -benchmem ./gateway/internal/pdu/ ./gateway/internal/iscsi/ ./rbdbackend/
"$here/memory-vs-tgt.sh"
"$here/rbd-gateway.sh"
