# Helpers for scripts/bench.sh: free ports, readiness, process bookkeeping and /proc readings.
# Sourced, never run. Must never kill a process it did not start: every pid it stops was
# recorded by bench_spawn.

# Pids started by bench_spawn, stopped by bench_cleanup (the EXIT trap) if still running.
BENCH_PIDS=()

bench_log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

# bench_pick_ports N: prints N distinct TCP ports that nothing listens on. They are taken below
# the ephemeral range (32768+) so that no outgoing connection of the run can be using them.
bench_pick_ports() {
    local want=$1 found=0 port tries=0
    local base=$((20000 + RANDOM % 10000))
    local -A used=()
    while ((found < want)); do
        ((tries++ < 2000)) || bench_die "cannot find $want free ports"
        port=$((base + tries))
        ((port < 32000)) || port=$((port - 11000))
        [[ -n ${used[$port]:-} ]] && continue
        if [[ -z $(ss -Htan "( sport = :$port )" 2>/dev/null) ]]; then
            used[$port]=1
            echo "$port"
            found=$((found + 1))
        fi
    done
}

# bench_spawn NAME LOG CMD...: starts CMD in the background with output to LOG; sets
# BENCH_LAST_PID. Recorded so the EXIT trap can stop it.
bench_spawn() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
    bench_log "started $name (pid $BENCH_LAST_PID)"
}

# bench_stop PID [SIGNAL]: stops one recorded process and waits for it (at most 10 s, then KILL).
bench_stop() {
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop "$pid"
    done
    BENCH_PIDS=()
}

# bench_wait_port PORT PID [SECONDS]: waits until 127.0.0.1:PORT accepts a connection; fails if
# PID exits first or the time runs out.
bench_wait_port() {
    local port=$1 pid=$2 limit=${3:-20} i
    for ((i = 0; i < limit * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# bench_family PID: the process and its direct children (NGINX: master and worker).
bench_family() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

# bench_cpu_ticks PID...: "USER SYS" clock ticks summed over the processes (all threads).
bench_cpu_ticks() {
    local pid stat rest user=0 sys=0
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # The command name may hold spaces; the fields after it are fixed.
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        user=$((user + f[11]))
        sys=$((sys + f[12]))
    done
    echo "$user $sys"
}

# bench_rss_kb PID...: VmRSS summed over the processes, in KiB.
bench_rss_kb() {
    local pid total=0 kb
    for pid in "$@"; do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# bench_established PORT: ESTABLISHED connections whose remote end is 127.0.0.1:PORT.
bench_established() {
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}

# bench_seconds TICKS: clock ticks to seconds.
bench_seconds() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", t / hz }'; }

# bench_gcd A B
bench_gcd() {
    local a=$1 b=$2 t
    while ((b)); do
        t=$((a % b))
        a=$b
        b=$t
    done
    echo "$a"
}
