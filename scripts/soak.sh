#!/usr/bin/env bash
# Soak-and-fault test of the ringlb binary: ringlb-soak starts its own backends, runs ringlb on
# them, drives thousands of concurrent streams (half-closes both ways, echo, resets from either
# side, clients that stop reading, backends killed and restarted), checks every stream with
# BLAKE3 both ways and checks ringlb's descriptors, memory and idle CPU afterwards.
#
#   scripts/soak.sh                 # the full soak: 10,000 streams, 4 backends, 3 kills
#   scripts/soak.sh --short         # CI-sized: 300 streams, 2 backends, 1 kill
#   scripts/soak.sh --seed 1234     # replay a run; any other ringlb-soak flag passes through
#
# Builds the release binaries (SKIP_BUILD=1 to use them as they are), raises the open files
# limit, and writes the report to target/soak/ (SOAK_OUT to change): NAME.txt (as printed),
# NAME.json, and NAME/ with ringlb's config and log. Exits with ringlb-soak's status: 0 every
# check passed, 1 a check failed, 2 bad arguments, 3 the soak could not run. See
# scripts/README.md. Must never leave a process running: ringlb-soak stops everything it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
OUT=${SOAK_OUT:-$ROOT/target/soak}

short=""
given=" "
for a in "$@"; do
    case $a in
        --short) short="-short" ;;
        --json | --json=* | --ringlb | --ringlb=* | --work-dir | --work-dir=*) given+="${a%%=*} " ;;
    esac
done
NAME=soak-$(date +%Y%m%d-%H%M%S)$short

if [[ ${SKIP_BUILD:-} != 1 ]]; then
    cargo build --release --locked --bin ringlb --bin ringlb-soak
fi

# Every open stream holds two descriptors in the driver and two in ringlb (which inherits this
# limit). Where the hard limit stays below what 10,000 streams need, ringlb-soak holds as many
# open at once as the limit allows and the report says so.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)" >&2

mkdir -p "$OUT/$NAME"
extra=()
[[ $given == *" --ringlb "* ]] || extra+=(--ringlb "$BIN/ringlb")
[[ $given == *" --json "* ]] || extra+=(--json "$OUT/$NAME.json")
[[ $given == *" --work-dir "* ]] || extra+=(--work-dir "$OUT/$NAME")

set +e
"$BIN/ringlb-soak" "${extra[@]}" "$@" | tee "$OUT/$NAME.txt"
status=${PIPESTATUS[0]}
set -e
echo "report: $OUT/$NAME.txt" >&2
exit "$status"
