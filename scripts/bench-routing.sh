#!/usr/bin/env bash
# What content routing costs: new connections per second (one HTTP request each) through
# ringlb with a 6-rule table on its listener, against the same traffic through a listener
# without rules (which never peeks), in interleaved rounds, each on a freshly started ringlb.
# The requests match no rule, so every one is peeked, walked through all six rules and sent to
# the default pool: the full cost. Writes bench/results/routing-DATE.md with every run and the
# medians. See scripts/README.md.
#
# Must never report a figure it did not measure: a failed run stops the script.
#
# Knobs (environment): ROUNDS (3), DURATION (seconds per run, 5), CONNS (16), BENCH_DATE,
# SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
DATE=${BENCH_DATE:-$(date +%F)}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
CLK_TCK=$(getconf CLK_TCK)
OUT=$ROOT/bench/results/routing-$DATE.md
WORK=$(mktemp -d /tmp/ringlb-routing.XXXXXX)
# shellcheck disable=SC2034 # used by bench-lib.sh's cleanup
BENCH_PIDS=()
trap 'bench_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

write_conf() {
    local f=$1 rules=$2
    cat >"$f" <<EOF
[runtime]
workers = 1
access_log = false

[[listener]]
name = "api"
bind = "127.0.0.1:$PROXY_PORT"
pool = "general"
EOF
    if [[ $rules == 1 ]]; then
        cat >>"$f" <<'EOF'

[[listener.route]]
websocket = true
path_prefix = "/v1/realtime"
pool = "other"

[[listener.route]]
path_prefix = "/v1/embeddings"
pool = "other"

[[listener.route]]
method = "PUT"
pool = "other"

[[listener.route]]
host = "gpu-b.internal"
pool = "other"

[[listener.route]]
header = { name = "x-tier", value = "batch" }
pool = "other"

[[listener.route]]
sni = ["*.internal.example"]
pool = "other"
EOF
    fi
    cat >>"$f" <<EOF

[[pool]]
name = "general"
[[pool.backend]]
addr = "127.0.0.1:$BACKEND_PORT"

[[pool]]
name = "other"
[[pool.backend]]
addr = "127.0.0.1:$BACKEND_PORT"
EOF
}

# run_one NAME ROUND: one run; appends "name round req/s p99_ms cpu_us_per_conn" to runs.
run_one() {
    local name=$1 round=$2 pid u0 s0 u1 s1 json=$WORK/$1-$2.json
    bench_spawn "ringlb-$name" "$WORK/ringlb-$name.log" "$BIN/ringlb" --log warn run -c "$WORK/$name.toml"
    pid=$BENCH_LAST_PID
    bench_wait_port "$PROXY_PORT" "$pid" || bench_die "ringlb ($name) did not start: $(tail -3 "$WORK/ringlb-$name.log")"
    read -r u0 s0 < <(bench_cpu_ticks "$pid")
    "$BIN/ringlb-load" http --target "127.0.0.1:$PROXY_PORT" --connections "$CONNS" \
        --duration "${DURATION}s" --new-connection-per-request --json "$json" -q \
        >"$WORK/load-$name-$round.log" 2>&1 || bench_die "load ($name, round $round) failed: $(tail -3 "$WORK/load-$name-$round.log")"
    read -r u1 s1 < <(bench_cpu_ticks "$pid")
    bench_stop "$pid"
    python3 - "$json" "$name" "$round" "$((u1 - u0 + s1 - s0))" "$CLK_TCK" >>"$WORK/runs" <<'PY'
import json, sys
path, name, rnd, ticks, hz = sys.argv[1:]
d = json.load(open(path))
if d["requests"] == 0 or d["ok"] != d["requests"]:
    sys.exit(f"{name} round {rnd}: {d['requests'] - d['ok']} of {d['requests']} requests failed")
cpu_us = int(ticks) / int(hz) * 1e6 / d["connections_opened"]
print(name, rnd, f"{d['requests_per_s']:.0f}", f"{d['request']['p99'] / 1000:.2f}", f"{cpu_us:.1f}")
PY
}

main() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        bench_log "building release"
        (cd "$ROOT" && cargo build --release --bins)
    fi
    ulimit -n 65536 2>/dev/null || true
    read -r PROXY_PORT BACKEND_PORT < <(bench_pick_ports 2 | paste -sd' ')
    bench_spawn backend "$WORK/backend.log" "$BIN/ringlb" mock-backend \
        --listen "127.0.0.1:$BACKEND_PORT" --threads 1
    bench_wait_port "$BACKEND_PORT" "$BENCH_LAST_PID" || bench_die "mock backend did not start"
    write_conf "$WORK/plain.toml" 0
    write_conf "$WORK/routed.toml" 1
    : >"$WORK/runs"
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        run_one plain "$r"
        run_one routed "$r"
    done
    python3 - "$WORK/runs" "$OUT" "$DATE" "$ROUNDS" "$DURATION" "$CONNS" <<'PY'
import statistics, sys
runs_path, out, date, rounds, duration, conns = sys.argv[1:]
rows = [l.split() for l in open(runs_path) if l.strip()]
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
lines = [
    f"# Content routing cost, {date}",
    "",
    f"`scripts/bench-routing.sh`: ringlb (release, 1 worker) in front of one mock backend"
    f" (`/health`), `ringlb-load http --new-connection-per-request`, {conns} connections,"
    f" {duration} s per run, {rounds} interleaved rounds. `routed`: the listener has 6 rules"
    " (websocket + path_prefix, path_prefix, method, host, header, sni) that no request matches,"
    " so every connection is peeked and checked against all six; `plain`: no rules (no peek).",
    "",
    "| config | round | connections/s | p99 request ms | ringlb CPU us per connection |",
    "|---|---|---|---|---|",
]
lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |" for r in rows]
p, q = med("plain", 2), med("routed", 2)
lines += [
    "",
    "| median | plain | routed | routed / plain |",
    "|---|---|---|---|",
    f"| connections/s | {p:.0f} | {q:.0f} | {q / p:.3f} |",
    f"| p99 request ms | {med('plain', 3):.2f} | {med('routed', 3):.2f} | {med('routed', 3) / med('plain', 3):.3f} |",
    f"| CPU us per connection | {med('plain', 4):.1f} | {med('routed', 4):.1f} | {med('routed', 4) / med('plain', 4):.3f} |",
    "",
    f"Goal: routing costs under 5% of connection rate: {'met' if q >= 0.95 * p else 'NOT met'}"
    f" ({(1 - q / p) * 100:.1f}% slower).",
]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
    bench_log "report: $OUT"
}

main "$@"
