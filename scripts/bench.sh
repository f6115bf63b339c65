#!/usr/bin/env bash
# ringlb (on io_uring, and on its epoll driver as target ringlb-epoll) against HAProxy and
# NGINX, plus a direct-to-backend baseline, in one run.
#
# Builds release, starts the backends once, then for every workload runs each target in
# interleaved rounds (direct ringlb haproxy nginx, direct ringlb haproxy nginx, ...), each run on
# a freshly started proxy, reading the proxy's CPU and RSS from /proc around the run. Writes the
# raw per-run files to bench/results/raw/DATE/ and the report (bench/results/DATE.md and .svg)
# with ringlb-bench-report. See scripts/README.md.
#
# Must never report a figure it did not measure: a failed run stays failed in the report, and
# every process it started is stopped on exit.
#
# Knobs (environment): ROUNDS, DURATION (seconds per run), SMALL_DURATION, WORKLOADS, TARGETS,
# IDLE_CONNS, SMALL_RATE, SMALL_CONNS, CONNRATE_CONNS, FLEET_STREAMS, FLEET_CAPACITIES,
# FLEET_TOKENS, FLEET_TOKENS_PER_SEC, BENCH_DATE, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
# shellcheck source=bench-configs.sh
source "$ROOT/scripts/bench-configs.sh"
# shellcheck source=bench-workloads.sh
source "$ROOT/scripts/bench-workloads.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WORKLOADS=${WORKLOADS:-"bulk connrate small idle fleet"}
TARGETS=${TARGETS:-"direct ringlb ringlb-epoll haproxy nginx"}
BULK_CONNS=8
# Tail latency needs more samples than a throughput figure: 10 s at 2000/s gives 200 above p99.
SMALL_DURATION=${SMALL_DURATION:-10}
SMALL_RATE=${SMALL_RATE:-2000}
SMALL_CONNS=${SMALL_CONNS:-50}
CONNRATE_CONNS=${CONNRATE_CONNS:-32}
FLEET_STREAMS=${FLEET_STREAMS:-500}
FLEET_CAPACITIES=${FLEET_CAPACITIES:-"100 200 300"}
FLEET_TOKENS=${FLEET_TOKENS:-40}
FLEET_TOKENS_PER_SEC=${FLEET_TOKENS_PER_SEC:-20}
DATE=${BENCH_DATE:-$(date +%F)}
OUT=$ROOT/bench/results
RAW=$OUT/raw/$DATE
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/ringlb-bench.XXXXXX)
# NGINX workers drop root: they must be able to read the origin's files.
chmod 755 "$WORK"
LOGS=$WORK/logs
mkdir -p "$LOGS"
trap 'bench_cleanup' EXIT
trap 'exit 130' INT TERM

install_tools() {
    local need=()
    command -v haproxy >/dev/null || need+=(haproxy)
    command -v nginx >/dev/null || need+=(nginx libnginx-mod-stream)
    command -v wrk >/dev/null || need+=(wrk)
    if nginx -V 2>&1 | grep -q -- '--with-stream=dynamic' &&
        [[ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]]; then
        need+=(libnginx-mod-stream)
    fi
    if ((${#need[@]})); then
        bench_log "installing ${need[*]}"
        ((EUID == 0)) || bench_die "need root to install ${need[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
    fi
    # Debian builds the stream module as a dynamic module.
    NGINX_MODULE=""
    if nginx -V 2>&1 | grep -q -- '--with-stream=dynamic'; then
        NGINX_MODULE="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    fi
}

raise_fd_limit() {
    # Root may raise the hard limit; in a container it often cannot, and then the idle
    # workload is sized to what fits: the proxy holds two sockets per relayed connection.
    ulimit -Hn 1048576 2>/dev/null || true
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    local fit=$(((NOFILE - 1000) / 2))
    IDLE_CONNS=${IDLE_CONNS:-$((fit < 10000 ? fit : 10000))}
    PROXY_MAXCONN=$((IDLE_CONNS + 100))
    bench_log "fd limit $NOFILE: idle workload holds $IDLE_CONNS connections"
}

start_backends() {
    local ports
    mapfile -t ports < <(bench_pick_ports 18)
    P_ORIGIN=${ports[0]} P_ECHO=${ports[1]} P_IDLE=${ports[2]}
    FLEET_PORTS=("${ports[3]}" "${ports[4]}" "${ports[5]}")
    local i=6 t w
    for t in ringlb haproxy nginx; do
        for w in bulk small idle fleet; do
            printf -v "P_${t^^}_${w^^}" '%s' "${ports[i]}"
            i=$((i + 1))
        done
    done
    P_DIRECT_BULK=$P_ORIGIN P_DIRECT_SMALL=$P_ECHO

    write_origin_conf
    bench_spawn origin "$LOGS/origin.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf"
    bench_wait_port "$P_ORIGIN" "$BENCH_LAST_PID" || bench_die "origin did not start: $(cat "$LOGS/origin.log")"
    bench_spawn echo "$LOGS/echo.log" "$BIN/ringlb" --log warn mock-backend \
        --listen "127.0.0.1:$P_ECHO" --name echo --mode echo
    bench_wait_port "$P_ECHO" "$BENCH_LAST_PID" || bench_die "echo backend did not start"
    bench_spawn idle-backend "$LOGS/idle.log" "$BIN/ringlb" --log warn mock-backend \
        --listen "127.0.0.1:$P_IDLE" --name idle --mode echo
    bench_wait_port "$P_IDLE" "$BENCH_LAST_PID" || bench_die "idle backend did not start"

    read -r -a FLEET_CAPS <<<"$FLEET_CAPACITIES"
    ((${#FLEET_CAPS[@]} == 3)) || bench_die "FLEET_CAPACITIES needs three numbers"
    local g
    g=$(bench_gcd "$(bench_gcd "${FLEET_CAPS[0]}" "${FLEET_CAPS[1]}")" "${FLEET_CAPS[2]}")
    FLEET_WEIGHTS=()
    for i in 0 1 2; do
        FLEET_WEIGHTS+=($((FLEET_CAPS[i] / g)))
        bench_spawn "gpu$i" "$LOGS/gpu$i.log" "$BIN/ringlb" --log warn mock-backend \
            --listen "127.0.0.1:${FLEET_PORTS[i]}" --name "gpu$i" --mode inference \
            --capacity "${FLEET_CAPS[i]}" --tokens-per-sec "$FLEET_TOKENS_PER_SEC" --ttft 50ms
        bench_wait_port "${FLEET_PORTS[i]}" "$BENCH_LAST_PID" || bench_die "gpu$i did not start"
    done
}

# start_proxy TARGET: a fresh proxy; sets PROXY_PID and FAMILY (the pids whose CPU and RSS
# count). direct has none.
start_proxy() {
    local target=$1 w
    FAMILY=()
    PROXY_PID=""
    case $target in
    direct) return 0 ;;
    # The same config on both drivers; the start line (logged at info) says which one runs.
    ringlb) bench_spawn ringlb "$LOGS/ringlb.log" env NO_COLOR=1 RINGLB_IO=io_uring "$BIN/ringlb" \
        --log warn,ringlb::engine::server=info run -c "$WORK/ringlb.toml" ;;
    ringlb-epoll) bench_spawn ringlb-epoll "$LOGS/ringlb-epoll.log" env NO_COLOR=1 RINGLB_IO=epoll "$BIN/ringlb" \
        --log warn,ringlb::engine::server=info run -c "$WORK/ringlb.toml" ;;
    haproxy) bench_spawn haproxy "$LOGS/haproxy.log" haproxy -db -f "$WORK/haproxy.cfg" ;;
    nginx) bench_spawn nginx "$LOGS/nginx.log" nginx -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy/nginx.conf" ;;
    esac
    PROXY_PID=$BENCH_LAST_PID
    for w in bulk small idle fleet; do
        bench_wait_port "$(bench_listen_port "$target" "$w")" "$PROXY_PID" ||
            bench_die "$target did not start: $(tail -5 "$LOGS/$target.log")"
    done
    if [[ $target == ringlb* ]]; then
        local want=io_uring
        [[ $target == ringlb-epoll ]] && want=epoll
        grep -q "io=$want" "$LOGS/$target.log" ||
            bench_die "$target does not run on $want: $(grep 'ringlb started' "$LOGS/$target.log")"
    fi
    local i
    # NGINX listens in the master before it forks the worker, whose CPU and RSS are the ones
    # that grow: wait for it.
    for ((i = 0; i < 100; i++)); do
        mapfile -t FAMILY < <(bench_family "$PROXY_PID")
        [[ $target != nginx || ${#FAMILY[@]} -ge 2 ]] && break
        sleep 0.05
    done
    [[ $target != nginx || ${#FAMILY[@]} -ge 2 ]] || bench_die "nginx started no worker"
}

stop_proxy() {
    [[ -n $PROXY_PID ]] && bench_stop "$PROXY_PID"
    PROXY_PID=""
}

write_meta() {
    {
        printf 'date\t%s\n' "$DATE"
        printf 'cpu\t%s\n' "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
        printf 'cores\t%s\n' "$(nproc)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'ringlb\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf 'haproxy\t%s\n' "$(haproxy -v | awk 'NR==1 {print $3}')"
        printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's|.*/||')"
        printf 'wrk\t%s\n' "$(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
        printf 'rounds\t%s\n' "$ROUNDS"
        printf 'duration_s\t%s\n' "$DURATION"
        printf 'fd_limit\t%s\n' "$NOFILE"
        printf 'idle_conns\t%s\n' "$IDLE_CONNS"
        printf 'bulk_conns\t%s\n' "$BULK_CONNS"
        printf 'connrate_conns\t%s\n' "$CONNRATE_CONNS"
        printf 'small_duration_s\t%s\n' "$SMALL_DURATION"
        printf 'small_rate\t%s\n' "$SMALL_RATE"
        printf 'small_conns\t%s\n' "$SMALL_CONNS"
        printf 'fleet_streams\t%s\n' "$FLEET_STREAMS"
        printf 'fleet_capacities\t%s\n' "$FLEET_CAPACITIES"
        printf 'fleet_tokens\t%s\n' "$FLEET_TOKENS"
        printf 'fleet_tokens_per_sec\t%s\n' "$FLEET_TOKENS_PER_SEC"
    } >"$RAW/meta.tsv"
}

main() {
    install_tools
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        bench_log "building release"
        (cd "$ROOT" && cargo build --release --bins)
    fi
    raise_fd_limit
    rm -rf "$RAW"
    mkdir -p "$RAW"
    start_backends
    write_ringlb_conf
    write_haproxy_conf
    write_nginx_proxy_conf
    write_meta
    printf 'workload\ttarget\tround\tclient\tcpu_user_s\tcpu_sys_s\trss_before_kb\trss_held_kb\theld\tsamples\n' \
        >"$RAW/runs.tsv"

    local workload round target
    for workload in $WORKLOADS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for target in $TARGETS; do
                if [[ $target == direct && ($workload == idle || $workload == fleet) ]]; then
                    continue # nothing to balance or to measure without a proxy
                fi
                bench_log "$workload round $round/$ROUNDS: $target"
                start_proxy "$target"
                "run_$workload" "$target" "$round"
                stop_proxy
            done
        done
    done

    "$BIN/ringlb-bench-report" --raw "$RAW" --markdown "$OUT/$DATE.md" --svg "$OUT/$DATE.svg"
    bench_log "wrote $OUT/$DATE.md and $OUT/$DATE.svg (raw runs in $RAW; logs in $LOGS)"
}

main "$@"
