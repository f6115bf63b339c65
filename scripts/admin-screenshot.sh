#!/usr/bin/env bash
# Screenshot of the admin status page (GET /) in a real headless browser, on a demo-like
# fleet: three mock GPU backends (capacities 8/16/24, weights 1:2:3) and a fourth address
# where nothing listens (so passive health marks it down), ringlb in front with the admin API,
# 24 SSE streams of load, and the second backend drained through the API. The page must show
# all three states (up, draining, down) with live counts.
#
#   scripts/admin-screenshot.sh                 # writes target/admin-screenshot.png
#   scripts/admin-screenshot.sh /tmp/page.png   # somewhere else
#
# Builds the debug binaries (SKIP_BUILD=1 to use them as they are) and installs Debian's
# `chromium` with apt when it is missing (root needed only then). Every port is picked by the
# kernel (port 0) and read back from the processes' own output. Must never leave a process
# running: everything it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-$ROOT/target/admin-screenshot.png}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug

if [[ ${SKIP_BUILD:-} != 1 ]]; then
    cargo build --locked --bin ringlb --bin ringlb-load
fi

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
    echo "installing chromium (Debian package)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser=$(command -v chromium)
fi

WORK=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits (10 s at most) until file $1 has a line matching $2, and prints that line.
wait_line() {
    for _ in $(seq 100); do
        if grep -m1 -- "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for \"$2\" in $1:" >&2
    cat "$1" >&2
    exit 1
}

# Starts a mock backend and prints its address.
mock() {
    "$BIN/ringlb" mock-backend --listen 127.0.0.1:0 --name "$1" --capacity "$2" \
        --tokens-per-sec 20 >"$WORK/$1.out" 2>/dev/null &
    pids+=($!)
    wait_line "$WORK/$1.out" "listening on" | sed 's/.*listening on //'
}

a=$(mock gpu-a-small 8)
b=$(mock gpu-b-medium 16)
c=$(mock gpu-c-large 24)

cat >"$WORK/ringlb.toml" <<EOF
[runtime]
workers = 2

[[listener]]
name = "llm"
bind = "127.0.0.1:0"
pool = "gpu"

[[pool]]
name = "gpu"
balance = "least_connections"
retries = 3

[[pool.backend]]
addr = "$a"
weight = 1
max_connections = 8

[[pool.backend]]
addr = "$b"
weight = 2
max_connections = 16

[[pool.backend]]
addr = "$c"
weight = 3
max_connections = 24

# Nothing listens here: connects are refused and passive health marks it down.
[[pool.backend]]
addr = "127.0.0.1:1"
weight = 1

[admin]
bind = "127.0.0.1:0"
EOF

NO_COLOR=1 RUST_LOG=ringlb=info "$BIN/ringlb" run -c "$WORK/ringlb.toml" 2>"$WORK/ringlb.log" &
pids+=($!)
admin=$(wait_line "$WORK/ringlb.log" "admin API listening" | sed 's/.*addr=\([^ ]*\).*/\1/')
listen=$(wait_line "$WORK/ringlb.log" "listening listener=llm" | sed 's/.*addr=\([^ ]*\).*/\1/')
echo "ringlb on $listen, admin API on http://$admin/" >&2

"$BIN/ringlb-load" sse --target "$listen" --connections 24 --duration 30s --max-tokens 400 \
    >"$WORK/load.out" 2>&1 &
pids+=($!)

# Wait until streams are open and the dead backend is marked down, then drain backend b.
for _ in $(seq 100); do
    status=$(curl -fsS "http://$admin/status")
    if grep -q '"state":"down"' <<<"$status" && grep -q '"active":[1-9]' <<<"$status"; then
        break
    fi
    sleep 0.1
done
curl -fsS -X POST "http://$admin/pools/gpu/backends/$b/drain" >/dev/null
curl -fsS -X POST "http://$admin/pools/gpu/backends/$c/weight?weight=4" >/dev/null

mkdir -p "$(dirname "$OUT")"
# The page refreshes itself every second; a virtual time budget lets two refreshes run.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1500,820 \
    --virtual-time-budget=2500 --screenshot="$OUT" "http://$admin/" 2>"$WORK/chromium.log" || {
    cat "$WORK/chromium.log" >&2
    exit 1
}
echo "screenshot: $OUT" >&2
