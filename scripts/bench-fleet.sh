#!/usr/bin/env bash
# The inference-fleet benchmark of issue 10: four mock GPUs of 16 generation slots, one at half
# speed (gpu1, --slowdown 2) and one carrying 12 streams of load that does not come through the
# balancer (gpu2, --external-load 12); an open-loop arrival process of SSE streams (a new
# connection each, long-tailed max_tokens drawn per request from a seed) at the rate that keeps
# the fleet ~80% busy; five L4 balancers in front of the same fleet, in interleaved rounds
# (ringlb least_load, ringlb least_connections, HAProxy leastconn, NGINX least_conn, ringlb
# round_robin; then again), every run on fresh processes. Measures TTFT, inter-token latency,
# per-stream decode rate, completed and failed streams, the streams that queued in a GPU's own
# queue (the mocks' ringlb_mock_client_requests_queued_total) and the load of each GPU over the
# run ((running + waiting) / capacity, sampled from its /metrics).
#
#   scripts/bench-fleet.sh                     # 5 targets x 3 rounds of 30 s, ~12 minutes
#   ROUNDS=1 TARGETS="least_load haproxy" DURATION=10 scripts/bench-fleet.sh
#
# Builds the release binaries (SKIP_BUILD=1 to use them as they are). Writes the report to
# bench/results/fleet-DATE.md, its chart to bench/results/fleet-DATE.svg and per-run figures
# to bench/results/raw/fleet-DATE/; every log stays in the work directory it prints. Exits
# non-zero if a step fails (a process did not start or died, a client wrote no report). Stops
# every process it started on exit, Ctrl-C included. See scripts/README.md.
#
# Knobs (environment): ROUNDS, TARGETS, DURATION (s), LOAD (target busy fraction, 0.8),
# RATE (overrides LOAD), CONNECTIONS, CAPACITY, TOKENS_PER_SEC, TTFT_MS, SLOW_GPU_SLOWDOWN,
# EXTERNAL_LOAD, LENGTHS (a --max-tokens-dist spec), ENGINE_METRICS (auto|on|off),
# SCRAPE_INTERVAL, SAMPLE_INTERVAL (s), CLIENT_TIMEOUT, FLEET_DATE, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_log() { printf '[fleet %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-"least_load least_connections haproxy nginx round_robin"}
DURATION=${DURATION:-30}
LOAD=${LOAD:-0.8}
CONNECTIONS=${CONNECTIONS:-200}
CAPACITY=${CAPACITY:-16}
TOKENS_PER_SEC=${TOKENS_PER_SEC:-100}
TTFT_MS=${TTFT_MS:-100}
SLOW_GPU_SLOWDOWN=${SLOW_GPU_SLOWDOWN:-2}
EXTERNAL_LOAD=${EXTERNAL_LOAD:-12}
LENGTHS=${LENGTHS:-"lognormal:median=40,sigma=1,max=1000"}
ENGINE_METRICS=${ENGINE_METRICS:-auto}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-250ms}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-0.25}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120s}
DATE=${FLEET_DATE:-$(date +%F)}
OUT=$ROOT/bench/results
RAW=$OUT/raw/fleet-$DATE
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
REPORT=$ROOT/scripts/bench-fleet-report.py
NAMES=(gpu0 gpu1 gpu2 gpu3)
# Per GPU: slowdown and phantom streams. gpu1 is the old card, gpu2 is shared with clients
# that do not pass through the balancer.
SLOWDOWNS=(1 "$SLOW_GPU_SLOWDOWN" 1 1)
EXTERNALS=(0 0 "$EXTERNAL_LOAD" 0)

WORK=$(mktemp -d /tmp/ringlb-fleet.XXXXXX)
trap bench_cleanup EXIT
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

# The engine_metrics block of ringlb's least_load pool, once ringlb knows the section.
engine_metrics_block() {
    printf '\n[pool.engine_metrics]\npath = "/metrics"\ninterval = "%s"\nflavor = "vllm"\n' \
        "$SCRAPE_INTERVAL"
}

# Whether this ringlb build accepts [pool.engine_metrics] (the scraper may not be merged yet).
engine_metrics_supported() {
    local f=$WORK/probe.toml
    {
        printf '[[listener]]\nname = "api"\nbind = "127.0.0.1:1"\npool = "gpu"\n\n'
        printf '[[pool]]\nname = "gpu"\nbalance = "least_load"\n'
        engine_metrics_block
        printf '\n[[pool.backend]]\naddr = "127.0.0.1:2"\n'
    } >"$f"
    "$BIN/ringlb" check --no-bind -c "$f" >"$WORK/probe.log" 2>&1
}

# write_ringlb_conf STRATEGY FILE LISTEN_PORT ADMIN_PORT BACKEND_PORT...
write_ringlb_conf() {
    local strategy=$1 file=$2 lport=$3 aport=$4 p
    shift 4
    {
        cat <<EOF
[runtime]
workers = 1
access_log = false
shutdown_timeout = "1s"

[admin]
bind = "127.0.0.1:$aport"

[[listener]]
name = "api"
bind = "127.0.0.1:$lport"
pool = "gpu"

[[pool]]
name = "gpu"
balance = "$strategy"
EOF
        [[ $strategy == least_load && $USE_ENGINE_METRICS == 1 ]] && engine_metrics_block
        for p in "$@"; do printf '\n[[pool.backend]]\naddr = "127.0.0.1:%s"\n' "$p"; done
    } >"$file"
}

# write_haproxy_conf FILE LISTEN_PORT BACKEND_PORT...: as scripts/bench-configs.sh does.
write_haproxy_conf() {
    local file=$1 lport=$2 i=0 p
    shift 2
    {
        cat <<EOF
global
    nbthread 1
    maxconn $((CONNECTIONS * 4))

defaults
    mode tcp
    balance leastconn
    timeout connect 3s
    timeout client 1h
    timeout server 1h

frontend fe
    bind 127.0.0.1:$lport backlog 4096
    default_backend be

backend be
EOF
        for p in "$@"; do printf '    server s%d 127.0.0.1:%s\n' $((i++)) "$p"; done
    } >"$file"
}

# write_nginx_conf DIR LISTEN_PORT BACKEND_PORT...
write_nginx_conf() {
    local dir=$1 lport=$2 p
    shift 2
    mkdir -p "$dir"
    {
        cat <<EOF
$NGINX_MODULE
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((CONNECTIONS * 8)); }
stream {
    proxy_connect_timeout 3s;
    proxy_timeout 1h;
    upstream fleet {
        least_conn;
EOF
        for p in "$@"; do printf '        server 127.0.0.1:%s;\n' "$p"; done
        printf '    }\n    server {\n        listen 127.0.0.1:%s backlog=4096;\n        proxy_pass fleet;\n    }\n}\n' "$lport"
    } >"$dir/nginx.conf"
}

# start_target TARGET DIR LISTEN_PORT ADMIN_PORT BACKEND_PORT...: sets BENCH_LAST_PID.
start_target() {
    local target=$1 dir=$2 lport=$3 aport=$4
    shift 4
    case $target in
    least_load | least_connections | round_robin)
        write_ringlb_conf "$target" "$dir/ringlb.toml" "$lport" "$aport" "$@"
        bench_spawn "ringlb $target" "$dir/proxy.log" "$BIN/ringlb" --log warn run -c "$dir/ringlb.toml"
        ;;
    haproxy)
        write_haproxy_conf "$dir/haproxy.cfg" "$lport" "$@"
        bench_spawn haproxy "$dir/proxy.log" haproxy -db -f "$dir/haproxy.cfg"
        ;;
    nginx)
        write_nginx_conf "$dir/nginx" "$lport" "$@"
        bench_spawn nginx "$dir/proxy.log" nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
        ;;
    *) bench_die "unknown target $target (least_load least_connections haproxy nginx round_robin)" ;;
    esac
}

# run_one TARGET ROUND: one run on fresh processes; leaves its files in $WORK/TARGET-ROUND.
run_one() {
    local target=$1 round=$2 dir=$WORK/$1-$2 ports i pids=() urls=()
    mkdir -p "$dir"
    mapfile -t ports < <(bench_pick_ports 6)
    local lport=${ports[4]} aport=${ports[5]}
    for i in 0 1 2 3; do
        bench_spawn "${NAMES[i]}" "$dir/${NAMES[i]}.log" "$BIN/ringlb" --log warn mock-backend \
            --listen "127.0.0.1:${ports[i]}" --name "${NAMES[i]}" --mode inference \
            --capacity "$CAPACITY" --tokens-per-sec "$TOKENS_PER_SEC" --ttft "${TTFT_MS}ms" \
            --slowdown "${SLOWDOWNS[i]}" --external-load "${EXTERNALS[i]}" \
            --max-tokens-dist "$LENGTHS" --metrics-flavor vllm
        pids+=("$BENCH_LAST_PID")
        urls+=("${NAMES[i]}=http://127.0.0.1:${ports[i]}/metrics")
        wait_http "http://127.0.0.1:${ports[i]}/health" "$BENCH_LAST_PID" ||
            bench_die "${NAMES[i]} did not start: $(tail -3 "$dir/${NAMES[i]}.log")"
    done
    start_target "$target" "$dir" "$lport" "$aport" "${ports[@]:0:4}"
    local proxy=$BENCH_LAST_PID
    bench_wait_port "$lport" "$proxy" || bench_die "$target did not start: $(tail -3 "$dir/proxy.log")"
    if [[ $target == least_load && $USE_ENGINE_METRICS == 1 ]]; then
        # Wait until the first scrape of every backend is in, so the run measures least_load
        # and not its least_connections fallback.
        wait_engine_readings "$aport" "$proxy" || bench_die "ringlb has no engine readings"
    fi

    bench_spawn sampler "$dir/sampler.log" python3 "$REPORT" sample "$SAMPLE_INTERVAL" \
        "$dir/samples.jsonl" "${urls[@]}"
    local sampler=$BENCH_LAST_PID
    bench_spawn load "$dir/load.txt" "$BIN/ringlb-load" sse --target "127.0.0.1:$lport" \
        --connections "$CONNECTIONS" --rate "$RATE" --new-connection-per-request \
        --duration "${DURATION}s" --max-tokens-dist "$LENGTHS" --seed "$round" \
        --timeout "$CLIENT_TIMEOUT" --backend-header --quiet \
        --json "$dir/load.json" --request-log "$dir/requests.jsonl"
    local load=$BENCH_LAST_PID loadavg status=0
    loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    wait "$load" || status=$?
    ((status == 0)) || bench_die "ringlb-load failed ($status): $(tail -5 "$dir/load.txt")"
    [[ -s $dir/load.json ]] || bench_die "ringlb-load wrote no report ($dir/load.json)"
    kill -0 "$proxy" 2>/dev/null || bench_die "$target died during the run: $(tail -5 "$dir/proxy.log")"
    bench_stop "$sampler"
    [[ -s $dir/samples.jsonl ]] || bench_die "no /metrics samples: $(tail -3 "$dir/sampler.log")"
    for i in 0 1 2 3; do
        curl -sf --max-time 5 "http://127.0.0.1:${ports[i]}/metrics" >"$dir/${NAMES[i]}.metrics" ||
            bench_die "cannot read ${NAMES[i]}'s /metrics"
    done
    if [[ $target == least_load || $target == least_connections || $target == round_robin ]]; then
        curl -sf --max-time 5 "http://127.0.0.1:$aport/metrics" >"$dir/ringlb.metrics" || true
    fi
    bench_stop "$proxy"
    for i in 0 1 2 3; do bench_stop "${pids[i]}"; done
    # shellcheck disable=SC2034 # read by bench_cleanup (bench-lib.sh)
    BENCH_PIDS=()
    printf 'target\t%s\nround\t%s\nloadavg\t%s\ncapacity\t%s\nengine_metrics\t%s\n' \
        "$target" "$round" "$loadavg" "$CAPACITY" \
        "$([[ $target == least_load ]] && echo "$USE_ENGINE_METRICS" || echo -)" >"$dir/meta.tsv"
    python3 "$REPORT" run "$dir" >"$dir/summary.json" || bench_die "cannot analyse $dir"
    bench_log "$target round $round: $(jq -r '"\(.ok) ok, \(.failed) failed; TTFT p50 \(.ttft_p50_ms) ms p99 \(.ttft_p99_ms) ms; ITL p99 \(.itl_p99_ms) ms; queued at a GPU \(.queued)"' "$dir/summary.json")"
}

# wait_engine_readings ADMIN_PORT PID: until ringlb's /metrics shows a fresh engine reading for
# all four backends (any ringlb_backend_engine_* series with a value for each).
wait_engine_readings() {
    local port=$1 pid=$2 i n
    for ((i = 0; i < 200; i++)); do
        n=$(curl -sf --max-time 1 "http://127.0.0.1:$port/metrics" |
            grep -c '^ringlb_backend_engine_fresh{.*} 1' || true)
        [[ $n -ge 4 ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    bench_log "WARNING: no ringlb_backend_engine_fresh series after 10 s; running anyway"
    return 0
}

main() {
    ((ROUNDS >= 1 && DURATION >= 1)) || bench_die "need ROUNDS >= 1 and DURATION >= 1"
    local tool
    for tool in jq curl python3 haproxy nginx; do
        command -v "$tool" >/dev/null ||
            bench_die "needs $tool (apt-get install -y jq curl python3 haproxy nginx)"
    done
    NGINX_MODULE=""
    if nginx -V 2>&1 | grep -q -- '--with-stream=dynamic'; then
        [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] ||
            bench_die "NGINX needs its stream module (apt-get install -y libnginx-mod-stream)"
        NGINX_MODULE="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    fi
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        bench_log "building release"
        (cd "$ROOT" && cargo build --release --locked --bin ringlb --bin ringlb-load)
    fi
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    case $ENGINE_METRICS in
    on) USE_ENGINE_METRICS=1 ;;
    off) USE_ENGINE_METRICS=0 ;;
    auto) if engine_metrics_supported; then USE_ENGINE_METRICS=1; else USE_ENGINE_METRICS=0; fi ;;
    *) bench_die "ENGINE_METRICS must be auto, on or off" ;;
    esac
    if ((USE_ENGINE_METRICS == 0)); then
        bench_log "WARNING: least_load runs without [pool.engine_metrics] (this ringlb: $(tail -1 "$WORK/probe.log" 2>/dev/null || echo off)); it is least_connections then"
    fi
    # The arrival rate that keeps the fleet LOAD busy, printed with how it was computed.
    local plan
    plan=$(python3 "$REPORT" plan --load "$LOAD" --capacity "$CAPACITY" \
        --tokens-per-sec "$TOKENS_PER_SEC" --ttft-ms "$TTFT_MS" --lengths "$LENGTHS" \
        --slowdowns "${SLOWDOWNS[*]}" --externals "${EXTERNALS[*]}" ${RATE:+--rate "$RATE"}) ||
        bench_die "cannot plan the rate"
    printf '%s\n' "$plan" | jq -r '.explain[]' >&2
    RATE=$(jq -r .rate <<<"$plan")
    bench_log "work directory $WORK; rate $RATE streams/s"
    local round target dirs=()
    for ((round = 1; round <= ROUNDS; round++)); do
        for target in $TARGETS; do
            bench_log "$target round $round/$ROUNDS"
            run_one "$target" "$round"
            dirs+=("$WORK/$target-$round")
        done
    done
    rm -rf "$RAW"
    mkdir -p "$RAW"
    local d
    for d in "${dirs[@]}"; do
        cp "$d/summary.json" "$RAW/$(basename "$d").json"
    done
    cp "$WORK/${TARGETS%% *}-1/"*.toml "$RAW/" 2>/dev/null || true
    printf '%s\n' "$plan" >"$RAW/plan.json"
    {
        printf 'date\t%s\n' "$DATE"
        printf 'cpu\t%s\n' "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
        printf 'cores\t%s\n' "$(nproc)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'ringlb\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf 'haproxy\t%s\n' "$(haproxy -v | awk 'NR==1 {print $3}')"
        printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's|.*/||')"
        printf 'rounds\t%s\ntargets\t%s\nduration_s\t%s\nconnections\t%s\n' \
            "$ROUNDS" "$TARGETS" "$DURATION" "$CONNECTIONS"
        printf 'capacity\t%s\ntokens_per_sec\t%s\nttft_ms\t%s\nslowdowns\t%s\nexternals\t%s\n' \
            "$CAPACITY" "$TOKENS_PER_SEC" "$TTFT_MS" "${SLOWDOWNS[*]}" "${EXTERNALS[*]}"
        printf 'lengths\t%s\nengine_metrics\t%s\nscrape_interval\t%s\nclient_timeout\t%s\n' \
            "$LENGTHS" "$USE_ENGINE_METRICS" "$SCRAPE_INTERVAL" "$CLIENT_TIMEOUT"
        printf 'sample_interval_s\t%s\n' "$SAMPLE_INTERVAL"
    } >"$RAW/meta.tsv"
    python3 "$REPORT" report "$RAW" "$OUT/fleet-$DATE.svg" >"$OUT/fleet-$DATE.md"
    cat "$OUT/fleet-$DATE.md"
    bench_log "wrote $OUT/fleet-$DATE.md and .svg (per run: $RAW; logs: $WORK)"
}

main "$@"
