# The workloads of scripts/bench.sh: one function per workload runs it once against one target
# and appends a line to runs.tsv, with the proxy's CPU (and RSS where it matters) read around
# the run. Sourced, never run. Must never record a figure for a run that did not happen: a
# client that writes no report stops the benchmark.
#
# Reads: RAW, LOGS, BIN, ROOT, DURATION, SMALL_*, CONNRATE_CONNS, BULK_CONNS, IDLE_CONNS,
# FLEET_*, P_IDLE, FAMILY (pids of the running proxy; empty for direct).

# need_report ID: the client of run ID must have written its JSON report.
need_report() {
    [[ -s $RAW/$1.json ]] || bench_die "$1: the client wrote no report: $(tail -5 "$LOGS/$1.log")"
}

cpu_begin() { CPU0=$(bench_cpu_ticks "${FAMILY[@]}"); }
# cpu_end: sets CPU_USER and CPU_SYS (seconds, empty for direct).
cpu_end() {
    CPU_USER="" CPU_SYS=""
    ((${#FAMILY[@]})) || return 0
    local u0 s0 u1 s1
    read -r u0 s0 <<<"$CPU0"
    read -r u1 s1 < <(bench_cpu_ticks "${FAMILY[@]}")
    CPU_USER=$(bench_seconds $((u1 - u0)))
    CPU_SYS=$(bench_seconds $((s1 - s0)))
}

# record WORKLOAD TARGET ROUND CLIENT [RSS_BEFORE RSS_HELD HELD SAMPLES]
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$CPU_USER" "$CPU_SYS" \
        "${5:-}" "${6:-}" "${7:-}" "${8:-}" >>"$RAW/runs.tsv"
}

run_wrk() {
    local json=$1 port=$2 path=$3 conns=$4
    shift 4
    WRK_JSON=$json wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s -s "$ROOT/scripts/wrk-json.lua" \
        "$@" "http://127.0.0.1:$port$path" >"$LOGS/$(basename "$json" .json).log" 2>&1 || true
    need_report "$(basename "$json" .json)"
}

run_bulk() {
    local target=$1 round=$2 id="bulk-$1-$2"
    cpu_begin
    run_wrk "$RAW/$id.json" "$(bench_listen_port "$target" bulk)" /1m "$BULK_CONNS"
    cpu_end
    record bulk "$target" "$round" "$id.json"
}

run_connrate() {
    local target=$1 round=$2 id="connrate-$1-$2"
    cpu_begin
    run_wrk "$RAW/$id.json" "$(bench_listen_port "$target" bulk)" /small "$CONNRATE_CONNS" \
        -H "Connection: close"
    cpu_end
    record connrate "$target" "$round" "$id.json"
}

run_small() {
    local target=$1 round=$2 id="small-$1-$2"
    cpu_begin
    "$BIN/ringlb-load" tcp-echo --target "127.0.0.1:$(bench_listen_port "$target" small)" \
        --connections "$SMALL_CONNS" --rate "$SMALL_RATE" --duration "${SMALL_DURATION}s" \
        --message-size 100 --json "$RAW/$id.json" --quiet >"$LOGS/$id.log" 2>&1 || true
    need_report "$id"
    cpu_end
    record small "$target" "$round" "$id.json"
}

run_idle() {
    local target=$1 round=$2 id="idle-$1-$2" before held n last=-1 still=0 i
    sleep 0.5
    before=$(bench_rss_kb "${FAMILY[@]}")
    cpu_begin
    "$BIN/ringlb-load" idle --target "127.0.0.1:$(bench_listen_port "$target" idle)" \
        --connections "$IDLE_CONNS" --duration 120s --timeout 60s \
        --json "$RAW/$id.json" --quiet >"$LOGS/$id.log" 2>&1 &
    local load=$!
    BENCH_PIDS+=("$load")
    # Held once every connection reaches the backend, or when the count stops growing.
    for ((i = 0; i < 600; i++)); do
        n=$(bench_established "$P_IDLE")
        ((n >= IDLE_CONNS)) && break
        if ((n == last)); then
            ((++still < 30)) || break
        else
            still=0 last=$n
        fi
        sleep 0.2
    done
    sleep 1
    n=$(bench_established "$P_IDLE")
    held=$(bench_rss_kb "${FAMILY[@]}")
    bench_log "idle $target: $n connections held, RSS ${before} -> ${held} KiB"
    bench_stop "$load" INT
    need_report "$id"
    cpu_end
    record idle "$target" "$round" "$id.json" "$before" "$held" "$n"
}

# Active streams per backend, as the backends report them, every 250 ms.
fleet_sampler() {
    local out=$1 t i m running queued
    while :; do
        t=$(date +%s%3N)
        for i in 0 1 2; do
            m=$(curl -s --max-time 1 "http://127.0.0.1:${FLEET_PORTS[i]}/metrics" || true)
            running=$(awk '/^vllm:num_requests_running/ {print $2}' <<<"$m")
            queued=$(awk '/^vllm:num_requests_waiting/ {print $2}' <<<"$m")
            if [[ -n $running && -n $queued ]]; then
                printf '%s\tgpu%s\t%s\t%s\t%s\n' "$t" "$i" "${FLEET_CAPS[i]}" "$running" "$queued" >>"$out"
            fi
        done
        sleep 0.25
    done
}

run_fleet() {
    local target=$1 round=$2 id="fleet-$1-$2"
    printf 't_ms\tbackend\tcapacity\trunning\twaiting\n' >"$RAW/$id.samples.tsv"
    fleet_sampler "$RAW/$id.samples.tsv" &
    local sampler=$!
    BENCH_PIDS+=("$sampler")
    cpu_begin
    "$BIN/ringlb-load" sse --target "127.0.0.1:$(bench_listen_port "$target" fleet)" \
        --connections "$FLEET_STREAMS" --duration "${DURATION}s" --max-tokens "$FLEET_TOKENS" \
        --new-connection-per-request --backend-header --json "$RAW/$id.json" --quiet \
        >"$LOGS/$id.log" 2>&1 || true
    need_report "$id"
    cpu_end
    bench_stop "$sampler"
    record fleet "$target" "$round" "$id.json" "" "" "" "$id.samples.tsv"
}
