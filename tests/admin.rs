//! The admin API against a real balancer (in process on 127.0.0.1:0, and once as the `ringlb`
//! binary): every endpoint with and without the token, a scrape parsed by a Prometheus
//! text-format parser that matches the traffic sent, and the backend actions: a drained
//! backend gets no new stream while its open one still relays, enable brings it back, a weight
//! changes the share. Every wait is on a condition with a deadline.

mod common;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;

use prometheus_parse::{LineInfo, Scrape, Value};
use ringlb::admin::{self, AdminServer};
use ringlb::config;
use ringlb::control::ControlPlane;
use ringlb::engine::Server;

use common::*;

const TOKEN: &str = "test-token-0123456789";

/// A balancer with its admin API; fields drop in order (admin, control thread, server).
struct Running {
    admin: AdminServer,
    _control: ControlPlane,
    server: Server,
}

/// `pool_config(pool_keys, backends)` plus `[admin]` on 127.0.0.1:0 with `admin_keys`.
fn start_admin(pool_keys: &str, backends: &[SocketAddr], admin_keys: &str) -> Running {
    let mut text = pool_config(pool_keys, &vec![""; backends.len()]);
    text += &format!("[admin]\nbind = \"127.0.0.1:0\"\n{admin_keys}\n");
    for (i, b) in backends.iter().enumerate() {
        text = text.replace(&format!("{{B{i}}}"), &b.to_string());
    }
    let cfg = config::parse(&text, "admin.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let server = Server::start(&cfg).expect("server starts");
    let control = ControlPlane::start().expect("control plane starts");
    let state = std::sync::Arc::new(admin::AdminState::new(server.observer(), &cfg));
    let admin = admin::start(control.handle(), &cfg, state)
        .expect("admin starts")
        .expect("[admin] is configured");
    Running {
        admin,
        _control: control,
        server,
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on its own connection; `auth` is the whole Authorization value.
fn http(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to admin");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{auth}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("admin reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete reply");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {TOKEN}"))
}

fn get(r: &Running, path: &str) -> Reply {
    http(r.admin.addr(), "GET", path, None, "")
}

fn post(r: &Running, path: &str, body: &str) -> Reply {
    http(r.admin.addr(), "POST", path, None, body)
}

/// The driver this run's engine uses: epoll when the suite runs with RINGLB_IO=epoll (or the
/// host has no io_uring), else io_uring.
fn expected_driver() -> &'static str {
    let cfg = ringlb::config::parse(
        "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"127.0.0.1:9\"\n",
        "probe.toml",
    )
    .expect("config");
    let choice = ringlb::engine::choose_io(&cfg.runtime).expect("an I/O driver");
    choice.driver.as_str()
}

fn status_json(r: &Running) -> serde_json::Value {
    let reply = get(r, "/status");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("status is JSON")
}

/// Per connection: writes its one-byte `id`, then echoes until EOF and closes its side.
fn id_echo_backend(id: u8) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let _ = s.write_all(&[id]);
                let Ok(mut r) = s.try_clone() else { return };
                let _ = io::copy(&mut r, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// A scrape, checked line by line (the parser skips what it cannot read, so every line must
/// be one it reads), each family with one HELP and one TYPE before its samples.
fn scrape(r: &Running) -> Scrape {
    let reply = get(r, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply.head.contains("text/plain; version=0.0.4"),
        "{}",
        reply.head
    );
    let mut typed = Vec::new();
    for line in reply.body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Ignored | LineInfo::Empty => panic!("unreadable line {line:?}"),
            LineInfo::Type { metric_name, .. } => {
                assert!(!typed.contains(&metric_name), "{metric_name} typed twice");
                typed.push(metric_name);
            }
            LineInfo::Sample { metric_name, .. } => {
                let family = typed.last().expect("a sample before any TYPE");
                let base = family.strip_suffix("_bucket").unwrap_or(family);
                assert!(
                    metric_name.starts_with(base),
                    "{metric_name} outside {family}"
                );
            }
            LineInfo::Doc { .. } => {}
        }
    }
    let lines = reply.body.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("a valid exposition");
    for name in &typed {
        let base = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(parsed.docs.contains_key(base), "{base} has no HELP");
    }
    parsed
}

/// The values of `metric`, with the labels asked for.
fn values(s: &Scrape, metric: &str) -> Vec<(HashMap<String, String>, f64)> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .map(|x| {
            let v = match &x.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
                Value::Summary(_) => panic!("no summaries here"),
            };
            let labels = [
                "pool", "backend", "worker", "state", "version", "listener", "reason", "kind",
                "driver",
            ]
            .iter()
            .filter_map(|k| x.labels.get(k).map(|v| (k.to_string(), v.to_string())))
            .collect();
            (labels, v)
        })
        .collect()
}

fn sum(s: &Scrape, metric: &str) -> f64 {
    let v = values(s, metric);
    assert!(!v.is_empty(), "no {metric} in the scrape");
    v.iter().map(|(_, v)| v).sum()
}

fn backend_value(s: &Scrape, metric: &str, backend: SocketAddr) -> f64 {
    let addr = backend.to_string();
    values(s, metric)
        .into_iter()
        .find(|(l, _)| l.get("backend") == Some(&addr))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {metric} for {addr}"))
}

/// Opens a stream and returns it with the id its backend sent.
fn open(r: &Running) -> (TcpStream, u8) {
    let mut s = connect(addr(&r.server));
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

#[test]
fn every_endpoint_needs_the_token() {
    let r = start_admin("", &[id_echo_backend(0)], &format!("token = \"{TOKEN}\""));
    let b0 = r
        .server
        .table()
        .load()
        .pool(0)
        .unwrap()
        .backend_addr(0)
        .unwrap();
    let endpoints = [
        ("GET", "/".to_string()),
        ("GET", "/status".to_string()),
        ("GET", "/metrics".to_string()),
        ("POST", format!("/pools/p/backends/{b0}/enable")),
        ("POST", format!("/pools/p/backends/{b0}/weight?weight=1")),
        ("POST", format!("/pools/p/backends/{b0}/drain")),
    ];
    let wrong = "Bearer test-token-0123456788".to_string();
    for (method, path) in &endpoints {
        let none = http(r.admin.addr(), method, path, None, "");
        assert_eq!(none.status, 401, "{method} {path} without a token");
        assert!(none.head.contains("Basic realm"), "{}", none.head);
        let bad = http(r.admin.addr(), method, path, Some(&wrong), "");
        assert_eq!(bad.status, 401, "{method} {path} with a wrong token");
        let ok = http(r.admin.addr(), method, path, bearer().as_deref(), "");
        assert_eq!(
            ok.status, 200,
            "{method} {path} with the token: {}",
            ok.body
        );
    }
    // A browser sends the token as the Basic password.
    let basic = "Basic b3BzOnRlc3QtdG9rZW4tMDEyMzQ1Njc4OQ=="; // ops:test-token-0123456789
    let page = http(r.admin.addr(), "GET", "/", Some(basic), "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>ringlb status</title>"));
}

#[test]
fn metrics_public_opens_metrics_only() {
    let keys = format!("token = \"{TOKEN}\"\nmetrics_public = true");
    let r = start_admin("", &[id_echo_backend(0)], &keys);
    assert_eq!(get(&r, "/metrics").status, 200);
    assert_eq!(get(&r, "/status").status, 401);
    assert_eq!(get(&r, "/").status, 401);
    assert_eq!(
        http(r.admin.addr(), "GET", "/status", bearer().as_deref(), "").status,
        200
    );
}

#[test]
fn metrics_and_status_match_the_traffic() {
    let backends = [id_echo_backend(0), id_echo_backend(1)];
    let r = start_admin("", &backends, "");
    let msg = [7u8; 100];
    for _ in 0..5 {
        let (mut s, _) = open(&r);
        round_trip(&mut s, &msg);
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0, "clean end");
    }
    wait_for("5 streams completed", || r.server.stats().completed == 5);
    let held: Vec<(TcpStream, u8)> = (0..3).map(|_| open(&r)).collect();
    wait_for("3 connections in the slabs", || {
        r.server.stats().connections == 3
    });

    let m = scrape(&r);
    assert_eq!(sum(&m, "ringlb_worker_streams_completed_total"), 5.0);
    assert_eq!(sum(&m, "ringlb_worker_accepted_total"), 8.0);
    assert_eq!(
        values(&m, "ringlb_worker_accepted_total").len(),
        2,
        "one per worker"
    );
    assert_eq!(sum(&m, "ringlb_worker_resets_total"), 0.0);
    // Each relayed byte once: 100 up, the id and 100 back per completed stream, an id per held.
    assert_eq!(
        sum(&m, "ringlb_worker_received_bytes_total"),
        5.0 * 201.0 + 3.0
    );
    // Per backend: the same bytes split by direction, the 5 ended streams by reason (the
    // client sent FIN first), one connect each.
    assert_eq!(sum(&m, "ringlb_backend_sent_bytes_total"), 500.0);
    assert_eq!(
        sum(&m, "ringlb_backend_received_bytes_total"),
        5.0 * 101.0 + 3.0
    );
    let streams = values(&m, "ringlb_backend_streams_total");
    let by = |reason: &str| -> f64 {
        streams
            .iter()
            .filter(|(l, _)| l.get("reason").map(String::as_str) == Some(reason))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!((by("client_fin"), by("backend_reset")), (5.0, 0.0));
    assert_eq!(streams.iter().map(|(_, v)| v).sum::<f64>(), 5.0);
    assert_eq!(sum(&m, "ringlb_backend_connect_seconds_count"), 8.0);
    assert_eq!(sum(&m, "ringlb_backend_connect_failures_total"), 0.0);
    assert_eq!(sum(&m, "ringlb_worker_connections"), 3.0);
    assert_eq!(sum(&m, "ringlb_connections_admitted"), 3.0);
    assert_eq!(sum(&m, "ringlb_backend_active_streams"), 3.0);
    for (id, b) in backends.iter().enumerate() {
        let open_here = held.iter().filter(|(_, i)| usize::from(*i) == id).count() as f64;
        assert_eq!(
            backend_value(&m, "ringlb_backend_active_streams", *b),
            open_here
        );
        assert_eq!(backend_value(&m, "ringlb_backend_weight", *b), 1.0);
        assert_eq!(backend_value(&m, "ringlb_backend_up", *b), 1.0);
        let states = values(&m, "ringlb_backend_state");
        let addr = b.to_string();
        let up = states.iter().find(|(l, _)| {
            l.get("backend") == Some(&addr) && l.get("state").map(String::as_str) == Some("up")
        });
        assert_eq!(up.map(|(_, v)| *v), Some(1.0));
    }
    let types: Vec<_> = m
        .samples
        .iter()
        .filter(|s| s.metric == "ringlb_worker_streams_completed_total")
        .map(|s| matches!(s.value, Value::Counter(_)))
        .collect();
    assert!(types.iter().all(|c| *c), "completed is a counter");
    let io = values(&m, "ringlb_io_driver");
    assert_eq!(io.len(), 1);
    assert_eq!(
        io[0].0.get("driver").map(String::as_str),
        Some(expected_driver())
    );
    let version = values(&m, "ringlb_build_info");
    assert_eq!(
        version[0].0.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(sum(&m, "ringlb_config_reloads_total"), 0.0);
    assert_eq!(sum(&m, "ringlb_config_reload_failures_total"), 0.0);
    let wait = m
        .samples
        .iter()
        .find(|s| s.metric == "ringlb_pool_queue_wait_seconds")
        .expect("queue wait histogram");
    assert!(matches!(&wait.value, Value::Histogram(b) if b.len() == 13));
    assert_eq!(sum(&m, "ringlb_pool_queue_length"), 0.0);

    let s = status_json(&r);
    let digest = s["config_digest"].as_str().unwrap();
    let hash = u64::from_str_radix(digest, 16).unwrap() as f64;
    assert_eq!(sum(&m, "ringlb_config_hash"), hash);
    assert_eq!(s["totals"]["completed"], 5);
    assert_eq!(s["workers"].as_array().unwrap().len(), 2);
    assert_eq!(s["io"]["driver"], expected_driver());
    assert!(
        s["io"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{s}"
    );
    assert_eq!(s["listeners"][0]["name"], "test");
    assert_eq!(s["listeners"][0]["pool"], "p");
    let pool = &s["pools"][0];
    assert_eq!(
        (pool["name"].as_str(), pool["balance"].as_str()),
        (Some("p"), Some("least_connections"))
    );
    let active: u64 = pool["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["state"], "up");
            assert_eq!(b["health"]["passive"], "up");
            b["active"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(active, 3);
    // Every metric the shipped Grafana dashboard queries is one ringlb exports.
    let dashboard = include_str!("../config/grafana-ringlb.json");
    let mut queried: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ringlb_"))
        .collect();
    queried.dedup();
    assert!(queried.len() > 10);
    for name in queried {
        let family = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            m.docs.contains_key(family),
            "the dashboard queries unknown {name}"
        );
    }
    drop(held);
    wait_for("streams released", || {
        sum(&scrape(&r), "ringlb_backend_active_streams") == 0.0
    });
}

#[test]
fn a_drained_backend_keeps_its_stream_and_takes_no_new_one() {
    let backends = [id_echo_backend(0), id_echo_backend(1)];
    let r = start_admin("", &backends, "");
    let (mut first, id) = open(&r);
    let (drained, other) = (backends[usize::from(id)], 1 - id);
    let reply = post(&r, &format!("/pools/p/backends/{drained}/drain"), "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["state"], "draining");

    let new: Vec<(TcpStream, u8)> = (0..6).map(|_| open(&r)).collect();
    assert!(
        new.iter().all(|(_, i)| *i == other),
        "a new stream reached the drained backend"
    );
    round_trip(&mut first, b"still relayed after the drain");
    let s = status_json(&r);
    let b = s["pools"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == drained.to_string())
        .cloned()
        .unwrap();
    assert_eq!(
        (b["state"].as_str(), b["active"].as_u64()),
        (Some("draining"), Some(1))
    );
    assert_eq!(b["override"]["drain"], true);
    let m = scrape(&r);
    assert_eq!(backend_value(&m, "ringlb_backend_weight", drained), 0.0);
    assert_eq!(
        backend_value(&m, "ringlb_backend_active_streams", drained),
        1.0
    );

    assert_eq!(
        post(&r, &format!("/pools/p/backends/{drained}/enable"), "").status,
        200
    );
    // Least connections: 1 open there against 6 on the other, so the next stream goes back.
    let (_back, to) = open(&r);
    assert_eq!(to, id, "enable brings the backend back");
    round_trip(&mut first, b"and after the enable");
    assert_eq!(
        status_json(&r)["pools"][0]["backends"][0]["override"],
        serde_json::Value::Null
    );
}

#[test]
fn weight_changes_the_share_and_bad_actions_are_refused() {
    let backends = [id_echo_backend(0), id_echo_backend(1)];
    let r = start_admin("balance = \"round_robin\"", &backends, "");
    let b0 = backends[0];
    assert_eq!(
        post(&r, &format!("/pools/p/backends/{b0}/weight?weight=3"), "").status,
        200
    );
    let mut hits = [0usize; 2];
    for _ in 0..40 {
        let (_s, id) = open(&r);
        hits[usize::from(id)] += 1;
    }
    assert_eq!(hits, [30, 10], "weights 3:1 over whole round-robin periods");
    let m = scrape(&r);
    assert_eq!(backend_value(&m, "ringlb_backend_weight", b0), 3.0);

    let reply = post(
        &r,
        &format!("/pools/p/backends/{b0}/weight"),
        r#"{"weight": 1}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(backend_value(&scrape(&r), "ringlb_backend_weight", b0), 1.0);

    let refused = [
        (format!("/pools/p/backends/{b0}/weight?weight=0"), 400),
        (format!("/pools/p/backends/{b0}/weight"), 400),
        (format!("/pools/p/backends/{b0}/weight?weight=many"), 400),
        (format!("/pools/q/backends/{b0}/drain"), 404),
        ("/pools/p/backends/127.0.0.1:1/drain".to_string(), 404),
        ("/pools/p/backends/not-an-addr/drain".to_string(), 400),
        ("/pools/p/backends/127.0.0.1:1/reboot".to_string(), 404),
    ];
    for (path, code) in refused {
        let reply = post(&r, &path, "");
        assert_eq!(reply.status, code, "POST {path}: {}", reply.body);
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON error");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        get(&r, &format!("/pools/p/backends/{b0}/drain")).status,
        405
    );
    assert_eq!(post(&r, "/status", "").status, 405);
    assert_eq!(get(&r, "/nope").status, 404);
}

/// Drops ANSI colour sequences from a log line.
#[test]
fn ringlb_run_serves_the_admin_api() {
    let dir = std::env::temp_dir().join(format!("ringlb-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringlb.toml");
    let backend = id_echo_backend(0);
    let mut text = pool_config("", &[""]).replace("{B0}", &backend.to_string());
    text += "[admin]\nbind = \"127.0.0.1:0\"\n";
    std::fs::write(&path, &text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["run", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringlb runs");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let admin: SocketAddr = loop {
        let line = ringlb::tools::soak::strip_ansi(
            &lines
                .next()
                .expect("ringlb logged the admin address")
                .unwrap(),
        );
        if let Some(rest) = line.split("admin API listening").nth(1) {
            let addr = rest
                .split("addr=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            break addr.parse().unwrap();
        }
    };
    thread::spawn(move || lines.for_each(drop));
    let metrics = http(admin, "GET", "/metrics", None, "");
    let status = http(admin, "GET", "/status", None, "");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains(&format!("backend=\"{backend}\"")));
    let s: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(s["config_digest"], config::digest(text.as_bytes()));
}

#[test]
fn a_network_bind_without_a_token_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("ringlb-admin-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringlb.toml");
    let text = pool_config("", &[""]).replace("{B0}", "127.0.0.1:9")
        + "[admin]\nbind = \"0.0.0.0:9090\"\n";
    std::fs::write(&path, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .expect("ringlb runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.starts_with("bind = \"0.0.0.0"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "ringlb.toml:{line}:8: admin: `bind` 0.0.0.0:9090 is not a loopback"
        )),
        "{err}"
    );
}
