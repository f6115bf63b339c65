# Config writers for scripts/bench.sh: the HTTP origin (NGINX) and the three proxies under test.
# Sourced, never run. Every proxy gets the same listeners and the same backends, one worker,
# least-connections balancing and otherwise its stock defaults: the comparison must never
# tune one proxy and not the others.
#
# Reads: WORK (scratch dir), P_* ports, FLEET_PORTS/FLEET_WEIGHTS arrays, PROXY_MAXCONN,
# NOFILE, NGINX_MODULE (load_module line or empty).

# The listeners every proxy exposes: name, backend ports (space separated), weights.
bench_pools() {
    echo "bulk $P_ORIGIN 1"
    echo "small $P_ECHO 1"
    echo "idle $P_IDLE 1"
    echo "fleet ${FLEET_PORTS[*]} ${FLEET_WEIGHTS[*]}"
}

# The listen port of pool $2 on proxy $1.
bench_listen_port() {
    # ringlb-epoll is the same ringlb config on the epoll driver: the same ports.
    local target=${1%-epoll}
    local var="P_${target^^}_${2^^}"
    echo "${!var}"
}

write_origin_conf() {
    local dir=$WORK/origin
    mkdir -p "$dir/www" "$dir/tmp"
    head -c $((1 << 20)) /dev/urandom >"$dir/www/1m"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$P_ORIGIN backlog=4096;
        root $dir/www;
        location = /1m { default_type application/octet-stream; }
        location = /small { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
}

write_ringlb_conf() {
    local f=$WORK/ringlb.toml name ports weights i
    cat >"$f" <<EOF
[runtime]
workers = 1
# Like NGINX (access_log off) and HAProxy (no log line) here: the proxies' relaying is measured.
access_log = false
${RINGLB_RUNTIME:-}
EOF
    while read -r name rest; do
        read -r -a all <<<"$rest"
        local n=$((${#all[@]} / 2))
        cat >>"$f" <<EOF

[[listener]]
name = "$name"
bind = "127.0.0.1:$(bench_listen_port ringlb "$name")"
pool = "$name"

[[pool]]
name = "$name"
balance = "least_connections"
EOF
        for ((i = 0; i < n; i++)); do
            printf '\n[[pool.backend]]\naddr = "127.0.0.1:%s"\nweight = %s\n' \
                "${all[i]}" "${all[n + i]}" >>"$f"
        done
    done < <(bench_pools)
}

write_haproxy_conf() {
    local f=$WORK/haproxy.cfg name i
    cat >"$f" <<EOF
global
    nbthread 1
    maxconn $PROXY_MAXCONN
    # splice-auto uses pipes (2 fds each); bound them so maxconn fits the fd limit.
    maxpipes 256

defaults
    mode tcp
    balance leastconn
    option splice-auto
    timeout connect 3s
    timeout client 1h
    timeout server 1h
EOF
    while read -r name rest; do
        read -r -a all <<<"$rest"
        local n=$((${#all[@]} / 2))
        printf '\nfrontend fe_%s\n    bind 127.0.0.1:%s backlog 4096\n    default_backend be_%s\n' \
            "$name" "$(bench_listen_port haproxy "$name")" "$name" >>"$f"
        printf '\nbackend be_%s\n' "$name" >>"$f"
        for ((i = 0; i < n; i++)); do
            printf '    server s%d 127.0.0.1:%s weight %s\n' "$i" "${all[i]}" "${all[n + i]}" >>"$f"
        done
    done < <(bench_pools)
}

write_nginx_proxy_conf() {
    local dir=$WORK/nginx-proxy name i
    mkdir -p "$dir"
    local f=$dir/nginx.conf
    cat >"$f" <<EOF
$NGINX_MODULE
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
# A relayed connection holds two: the client's and the upstream's.
events { worker_connections $((PROXY_MAXCONN * 2)); }
stream {
    proxy_connect_timeout 3s;
    proxy_timeout 1h;
EOF
    while read -r name rest; do
        read -r -a all <<<"$rest"
        local n=$((${#all[@]} / 2))
        printf '    upstream up_%s {\n        least_conn;\n' "$name" >>"$f"
        for ((i = 0; i < n; i++)); do
            printf '        server 127.0.0.1:%s weight=%s;\n' "${all[i]}" "${all[n + i]}" >>"$f"
        done
        printf '    }\n    server {\n        listen 127.0.0.1:%s backlog=4096;\n        proxy_pass up_%s;\n    }\n' \
            "$(bench_listen_port nginx "$name")" "$name" >>"$f"
    done < <(bench_pools)
    echo "}" >>"$f"
}
