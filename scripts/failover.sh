#!/usr/bin/env bash
# The failover figure of issue 9: three mock inference backends behind ringlb under ~100 new
# SSE streams per second; a few seconds in one backend is killed (SIGKILL), a few seconds
# later another is frozen (SIGSTOP, SIGCONT at the end). Measures the new-stream failures the
# clients saw (split into the streams that were live on a node when it died or froze, which no
# L4 balancer can save, and every other one), how long the frozen node still got new streams,
# and how many streams ringlb replayed away from the two. Each configuration runs RUNS times,
# interleaved (a b c, a b c, ...), every run on fresh processes.
#
#   scripts/failover.sh                      # 3 configurations x 3 runs of 30 s, ~6 minutes
#   RUNS=1 CONFIGS=replay scripts/failover.sh
#
# Builds the release binaries (SKIP_BUILD=1 to use them as they are). Writes the report to
# bench/results/failover-DATE.md and per-run figures to bench/results/raw/failover-DATE/;
# every log of the run stays in the work directory it prints. Exits non-zero if a step fails
# (a process did not start or died, a run has no data). Stops every process it started on
# exit, Ctrl-C included. See scripts/README.md.
#
# Knobs (environment): RUNS, CONFIGS (replay noreplay retries0), DURATION (s), RATE,
# KILL_AT, STOP_AT (s into the load), MAX_TOKENS, TOKENS_PER_SEC, CLIENT_TIMEOUT,
# FAILOVER_DATE, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_log() { printf '[failover %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

RUNS=${RUNS:-3}
CONFIGS=${CONFIGS:-"replay noreplay retries0"}
DURATION=${DURATION:-30}
RATE=${RATE:-100}
KILL_AT=${KILL_AT:-5}
STOP_AT=${STOP_AT:-12}
MAX_TOKENS=${MAX_TOKENS:-50}
TOKENS_PER_SEC=${TOKENS_PER_SEC:-50}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-10s}
FIRST_BYTE_TIMEOUT=1s
DATE=${FAILOVER_DATE:-$(date +%F)}
OUT=$ROOT/bench/results
RAW=$OUT/raw/failover-$DATE
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
NAMES=(gpu-a gpu-b gpu-c)
KILLED=0 # index into NAMES
HUNG=1

WORK=$(mktemp -d /tmp/ringlb-failover.XXXXXX)
STOPPED_PID=""

cleanup() {
    # A frozen process ignores TERM until it runs again.
    [[ -n $STOPPED_PID ]] && kill -CONT "$STOPPED_PID" 2>/dev/null
    bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL PID [SECONDS]: until URL answers 2xx; fails if PID exits or the time runs out.
wait_http() {
    local url=$1 pid=$2 limit=${3:-20} i
    for ((i = 0; i < limit * 20; i++)); do
        curl -sf -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# wait_backends_up ADMIN_PORT PID: until the active check has passed on all three backends
# (they start "unknown" and take no stream before their first pass).
wait_backends_up() {
    local port=$1 pid=$2 i up
    for ((i = 0; i < 400; i++)); do
        up=$(curl -sf --max-time 1 "http://127.0.0.1:$port/status" |
            jq '[.pools[].backends[] | select(.state == "up")] | length' 2>/dev/null || echo 0)
        [[ $up == 3 ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# write_conf CONFIG FILE LISTEN_PORT ADMIN_PORT BACKEND_PORT...
write_conf() {
    local config=$1 file=$2 lport=$3 aport=$4
    shift 4
    local failover
    case $config in
    replay) failover="first_byte_timeout = \"$FIRST_BYTE_TIMEOUT\"" ;;
    noreplay) failover=$'replay_buffer = 0\nfirst_byte_timeout = "0s"' ;;
    retries0) failover=$'retries = 0\nfirst_byte_timeout = "'"$FIRST_BYTE_TIMEOUT"'"' ;;
    *) bench_die "unknown configuration $config (replay, noreplay, retries0)" ;;
    esac
    {
        cat <<EOF
[runtime]
workers = 2
access_log = true
shutdown_timeout = "1s"

[admin]
bind = "127.0.0.1:$aport"

[[listener]]
name = "api"
bind = "127.0.0.1:$lport"
pool = "gpu"

[[pool]]
name = "gpu"
balance = "least_connections"
$failover

[pool.health]
check = "http"
path = "/health"
interval = "1s"
timeout = "500ms"
fall = 2
rise = 2
EOF
        local p
        for p in "$@"; do
            printf '\n[[pool.backend]]\naddr = "127.0.0.1:%s"\n' "$p"
        done
    } >"$file"
}

now() { date +%s.%N; }

# signal_at SIGNAL PID: sends SIGNAL to PID and prints the Unix time right after, taken in the
# same process (a `date` before a `kill` can be 100 ms apart on a busy machine).
signal_at() {
    python3 -c 'import os, signal, sys, time
os.kill(int(sys.argv[2]), getattr(signal, "SIG" + sys.argv[1]))
print(f"{time.time():.6f}")' "$1" "$2"
}

# run_one CONFIG RUN: one scenario on fresh processes; leaves its files in $WORK/CONFIG-RUN.
run_one() {
    local config=$1 run=$2 dir=$WORK/$1-$2 ports i
    mkdir -p "$dir"
    mapfile -t ports < <(bench_pick_ports 5)
    local lport=${ports[3]} aport=${ports[4]}
    local pids=()
    for i in 0 1 2; do
        bench_spawn "${NAMES[i]}" "$dir/${NAMES[i]}.log" "$BIN/ringlb" --log warn mock-backend \
            --listen "127.0.0.1:${ports[i]}" --name "${NAMES[i]}" --mode inference \
            --capacity 1000 --ttft 50ms --tokens-per-sec "$TOKENS_PER_SEC"
        pids+=("$BENCH_LAST_PID")
        wait_http "http://127.0.0.1:${ports[i]}/health" "$BENCH_LAST_PID" ||
            bench_die "${NAMES[i]} did not start: $(tail -3 "$dir/${NAMES[i]}.log")"
    done
    write_conf "$config" "$dir/ringlb.toml" "$lport" "$aport" "${ports[@]:0:3}"
    bench_spawn ringlb "$dir/ringlb.log" "$BIN/ringlb" --log-format json \
        --log 'info,ringlb::engine::replay=debug,ringlb::engine::deadlines=debug,ringlb::engine::connect=debug' \
        run -c "$dir/ringlb.toml"
    local lb=$BENCH_LAST_PID
    bench_wait_port "$lport" "$lb" || bench_die "ringlb did not start: $(tail -3 "$dir/ringlb.log")"
    wait_backends_up "$aport" "$lb" || bench_die "the backends did not come up in ringlb's checks"

    bench_spawn load "$dir/load.txt" "$BIN/ringlb-load" sse --target "127.0.0.1:$lport" \
        --connections 2000 --rate "$RATE" --new-connection-per-request --duration "${DURATION}s" \
        --max-tokens "$MAX_TOKENS" --timeout "$CLIENT_TIMEOUT" --backend-header --quiet \
        --json "$dir/load.json" --request-log "$dir/requests.jsonl"
    local load=$BENCH_LAST_PID t0 t_kill t_stop t_cont loadavg
    loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(now)
    sleep "$KILL_AT"
    t_kill=$(signal_at KILL "${pids[KILLED]}") || bench_die "${NAMES[KILLED]} was gone before the kill"
    wait "${pids[KILLED]}" 2>/dev/null || true
    bench_log "$config run $run: killed ${NAMES[KILLED]} at +${KILL_AT}s"
    sleep "$(awk -v a="$STOP_AT" -v t0="$t0" -v now="$(now)" 'BEGIN { d = t0 + a - now; print (d > 0 ? d : 0) }')"
    STOPPED_PID=${pids[HUNG]}
    t_stop=$(signal_at STOP "${pids[HUNG]}") || bench_die "${NAMES[HUNG]} was gone before the freeze"
    bench_log "$config run $run: froze ${NAMES[HUNG]} at +${STOP_AT}s"
    sleep "$(awk -v a="$DURATION" -v t0="$t0" -v now="$(now)" 'BEGIN { d = t0 + a - now; print (d > 0 ? d : 0) }')"
    t_cont=$(signal_at CONT "${pids[HUNG]}") || bench_die "cannot thaw ${NAMES[HUNG]}"
    STOPPED_PID=""
    local status=0
    wait "$load" || status=$?
    ((status == 0)) || bench_die "ringlb-load failed ($status): $(tail -5 "$dir/load.txt")"
    kill -0 "$lb" 2>/dev/null || bench_die "ringlb died during the run: $(tail -5 "$dir/ringlb.log")"
    curl -sf --max-time 5 "http://127.0.0.1:$aport/metrics" >"$dir/metrics.txt" ||
        bench_die "cannot read ringlb's /metrics"
    # SIGTERM: streams still open are reset after shutdown_timeout, so every one has its line.
    bench_stop "$lb"
    for i in 0 1 2; do bench_stop "${pids[i]}"; done
    # shellcheck disable=SC2034 # read by bench_cleanup (bench-lib.sh)
    BENCH_PIDS=()
    {
        printf 'loadavg\t%s\n' "$loadavg"
        printf 'config\t%s\nrun\t%s\nt0\t%s\nt_kill\t%s\nt_stop\t%s\nt_cont\t%s\n' \
            "$config" "$run" "$t0" "$t_kill" "$t_stop" "$t_cont"
        printf 'killed\t%s\t127.0.0.1:%s\nhung\t%s\t127.0.0.1:%s\n' \
            "${NAMES[KILLED]}" "${ports[KILLED]}" "${NAMES[HUNG]}" "${ports[HUNG]}"
        printf 'first_byte_timeout_s\t%s\n' "$([[ $config == noreplay ]] && echo 0 || echo "${FIRST_BYTE_TIMEOUT%s}")"
    } >"$dir/meta.tsv"
    python3 "$ROOT/scripts/failover-report.py" run "$dir" >"$dir/summary.json" ||
        bench_die "cannot analyse $dir"
    bench_log "$config run $run: $(jq -r '"\(.requests) streams, \(.failed) failed (\(.failed_killed_live) live on the killed node, \(.failed_hung_live) live on the frozen node, \(.failed_other) other); last new stream to the frozen node \(.last_to_hung_s // "-") s after the freeze; \(.replayed_from_hung) replayed from it"' "$dir/summary.json")"
}

main() {
    ((RUNS >= 1 && KILL_AT >= 1 && STOP_AT > KILL_AT && DURATION > STOP_AT)) ||
        bench_die "need RUNS >= 1 and 1 <= KILL_AT < STOP_AT < DURATION (whole seconds)"
    local tool
    for tool in jq curl python3; do
        command -v "$tool" >/dev/null || bench_die "needs $tool (apt-get install $tool)"
    done
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        bench_log "building release"
        (cd "$ROOT" && cargo build --release --locked --bin ringlb --bin ringlb-load)
    fi
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    bench_log "work directory $WORK"
    local run config dirs=()
    for ((run = 1; run <= RUNS; run++)); do
        for config in $CONFIGS; do
            bench_log "$config run $run/$RUNS"
            run_one "$config" "$run"
            dirs+=("$WORK/$config-$run")
        done
    done
    rm -rf "$RAW"
    mkdir -p "$RAW"
    local d
    for d in "${dirs[@]}"; do
        cp "$d/summary.json" "$RAW/$(basename "$d").json"
        cp "$d/ringlb.toml" "$RAW/$(basename "$d").toml"
    done
    {
        printf 'date\t%s\n' "$DATE"
        printf 'cpu\t%s\n' "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
        printf 'cores\t%s\n' "$(nproc)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'ringlb\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf 'runs\t%s\nduration_s\t%s\nrate\t%s\nkill_at_s\t%s\nstop_at_s\t%s\n' \
            "$RUNS" "$DURATION" "$RATE" "$KILL_AT" "$STOP_AT"
        printf 'max_tokens\t%s\ntokens_per_sec\t%s\nclient_timeout\t%s\n' \
            "$MAX_TOKENS" "$TOKENS_PER_SEC" "$CLIENT_TIMEOUT"
    } >"$RAW/meta.tsv"
    python3 "$ROOT/scripts/failover-report.py" report "$RAW" >"$OUT/failover-$DATE.md"
    cat "$OUT/failover-$DATE.md"
    bench_log "wrote $OUT/failover-$DATE.md (per run: $RAW; logs: $WORK)"
}

main "$@"
