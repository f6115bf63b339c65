//! The engine-metrics scraper through the real balancer (in process, 127.0.0.1:0): two fake
//! inference engines, each one HTTP server on its own port that relays clients and serves a
//! `/metrics` body the test changes. Readings show in ringlb's `/metrics` and `/status`, go
//! stale when an engine stops answering, and an engine with requests running and a still
//! generation counter is stalled: new streams all go to the other backend until the counter
//! moves. Every wait is on a condition with a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use ringlb::admin::{self, AdminServer};
use ringlb::config;
use ringlb::control::ControlPlane;
use ringlb::engine::Server;
use ringlb::health::EngineScraper;

use common::*;

/// What a fake engine answers on `/metrics`.
#[derive(Clone)]
enum Metrics {
    Body(String),
    /// Reads the request and never answers (a hung exporter).
    Silent,
}

/// A fake engine: `/metrics` per [`Metrics`]; any other request gets `x-backend: NAME` and
/// the connection is held open until the client closes it (a stream).
struct Engine {
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
    /// `/metrics` requests so far.
    scrapes: Arc<AtomicUsize>,
}

impl Engine {
    fn spawn(name: &'static str) -> Engine {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind engine");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Mutex::new(Metrics::Body(String::new())));
        let scrapes = Arc::new(AtomicUsize::new(0));
        let (shared, count) = (metrics.clone(), scrapes.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (shared, count) = (shared.clone(), count.clone());
                thread::spawn(move || serve(stream, name, &shared, &count));
            }
        });
        Engine {
            addr,
            metrics,
            scrapes,
        }
    }

    /// Waits until `n` more scrapes than now have reached the engine.
    fn wait_scrapes(&self, n: usize) {
        let from = self.scrapes.load(Ordering::SeqCst);
        wait_for("more scrapes", || {
            self.scrapes.load(Ordering::SeqCst) >= from + n
        });
    }

    /// vLLM's series, two models (running and waiting split between them).
    fn set(&self, running: u32, waiting: u32, kv: f64, generation: u64) {
        let body = format!(
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
             # TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{{model_name=\"a\"}} {}.0\n\
             vllm:num_requests_running{{model_name=\"b\"}} {}.0\n\
             # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
             # TYPE vllm:num_requests_waiting gauge\n\
             vllm:num_requests_waiting{{model_name=\"a\"}} {waiting}.0\n\
             # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
             # TYPE vllm:kv_cache_usage_perc gauge\n\
             vllm:kv_cache_usage_perc{{model_name=\"a\"}} {kv}\n\
             # HELP vllm:generation_tokens_total Number of generation tokens processed.\n\
             # TYPE vllm:generation_tokens_total counter\n\
             vllm:generation_tokens_total{{model_name=\"a\"}} {generation}.0\n",
            running / 2,
            running - running / 2
        );
        *self.metrics.lock().unwrap() = Metrics::Body(body);
    }

    fn silence(&self) {
        *self.metrics.lock().unwrap() = Metrics::Silent;
    }
}

fn serve(mut s: TcpStream, name: &str, metrics: &Mutex<Metrics>, scrapes: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let mut rest = Vec::new();
    if head.starts_with(b"GET /metrics ") {
        scrapes.fetch_add(1, Ordering::SeqCst);
        let now = metrics.lock().unwrap().clone();
        match now {
            Metrics::Body(body) => {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            // Held until ringlb gives up and closes.
            Metrics::Silent => {
                let _ = s.read_to_end(&mut rest);
            }
        }
        return;
    }
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nx-backend: {name}\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = s.read_to_end(&mut rest);
}

/// ringlb with `[pool.engine_metrics]` (`keys`), its admin API and the scraper; fields drop
/// in order.
struct Running {
    _scraper: EngineScraper,
    admin: AdminServer,
    _control: ControlPlane,
    server: Server,
}

fn run(keys: &str, engines: &[&Engine]) -> Running {
    let mut text = pool_config(
        &format!("[pool.engine_metrics]\n{keys}"),
        &vec![""; engines.len()],
    );
    text += "[admin]\nbind = \"127.0.0.1:0\"\n";
    for (i, e) in engines.iter().enumerate() {
        text = text.replace(&format!("{{B{i}}}"), &e.addr.to_string());
    }
    let cfg = config::parse(&text, "engine.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let server = Server::start(&cfg).expect("server starts");
    let control = ControlPlane::start().expect("control plane starts");
    let state = Arc::new(admin::AdminState::new(server.observer(), &cfg));
    let admin = admin::start(control.handle(), &cfg, state)
        .expect("admin starts")
        .expect("[admin] is configured");
    let scraper = EngineScraper::spawn(control.handle(), server.table().clone());
    Running {
        _scraper: scraper,
        admin,
        _control: control,
        server,
    }
}

fn admin_get(r: &Running, path: &str) -> String {
    let mut s = TcpStream::connect(r.admin.addr()).expect("connect to admin");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("admin reply");
    text.split_once("\r\n\r\n")
        .map_or(text.clone(), |(_, b)| b.to_string())
}

/// The value of `name{pool="p",backend="ADDR"...}` in a scrape, if present.
fn value(scrape: &str, name: &str, backend: SocketAddr, extra: &str) -> Option<f64> {
    let prefix = format!("{name}{{pool=\"p\",backend=\"{backend}\"{extra}}} ");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Opens a stream through ringlb and holds it: the name of the backend that took it.
fn open_stream(lb: SocketAddr) -> (TcpStream, String) {
    let mut s = connect(lb);
    s.write_all(b"GET /v1/completions HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("answer"), 1, "closed early");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("x-backend: "))
        .unwrap_or_else(|| panic!("no x-backend in {text:?}"))
        .to_string();
    (s, name)
}

/// Scrapes every 50 ms; a reading lapses after 10 missed scrapes (a loaded CI host may miss a
/// few), an engine stalls after 1 s.
const FAST: &str = "flavor = \"vllm\"\ninterval = \"50ms\"\ntimeout = \"50ms\"\n\
                    stale_after = \"500ms\"\nstall_after = \"1s\"\n";

#[test]
fn readings_show_in_metrics_and_status_and_go_stale_when_the_engine_stops_answering() {
    let (a, b) = (Engine::spawn("a"), Engine::spawn("b"));
    a.set(3, 1, 0.5, 100);
    b.set(8, 4, 0.25, 7);
    let lb = run(FAST, &[&a, &b]);
    wait_for("both readings in /metrics", || {
        let m = admin_get(&lb, "/metrics");
        value(&m, "ringlb_backend_engine_running", a.addr, "") == Some(3.0)
            && value(&m, "ringlb_backend_engine_running", b.addr, "") == Some(8.0)
    });
    let m = admin_get(&lb, "/metrics");
    for (name, want_a, want_b) in [
        ("ringlb_backend_engine_waiting", 1.0, 4.0),
        ("ringlb_backend_engine_kv_usage", 0.5, 0.25),
        ("ringlb_backend_engine_fresh", 1.0, 1.0),
        ("ringlb_backend_engine_stalled", 0.0, 0.0),
    ] {
        assert_eq!(value(&m, name, a.addr, ""), Some(want_a), "{name} a\n{m}");
        assert_eq!(value(&m, name, b.addr, ""), Some(want_b), "{name} b\n{m}");
    }
    let ok = value(
        &m,
        "ringlb_backend_engine_scrapes_total",
        a.addr,
        ",result=\"ok\"",
    );
    assert!(ok.is_some_and(|n| n >= 1.0), "{m}");
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(&lb, "/status")).expect("status is JSON");
    let engine = &status["pools"][0]["backends"][0]["engine"];
    assert_eq!(engine["fresh"], true, "{status}");
    assert_eq!(engine["running"], 3);
    assert_eq!(engine["waiting"], 1);
    assert_eq!(engine["kv_usage"], 0.5);
    assert_eq!(engine["stalled"], false);

    a.silence();
    wait_for("a's reading stale, b's still fresh", || {
        let m = admin_get(&lb, "/metrics");
        value(&m, "ringlb_backend_engine_fresh", a.addr, "") == Some(0.0)
            && value(&m, "ringlb_backend_engine_fresh", b.addr, "") == Some(1.0)
    });
    let m = admin_get(&lb, "/metrics");
    assert_eq!(
        value(&m, "ringlb_backend_engine_running", a.addr, ""),
        None,
        "no value without a fresh reading"
    );
    let errors = value(
        &m,
        "ringlb_backend_engine_scrapes_total",
        a.addr,
        ",result=\"error\"",
    );
    assert!(errors.is_some_and(|n| n >= 1.0), "timeouts counted\n{m}");
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(&lb, "/status")).expect("status is JSON");
    assert_eq!(status["pools"][0]["backends"][0]["engine"]["fresh"], false);
    assert_eq!(
        status["pools"][0]["backends"][0]["engine"]["running"],
        serde_json::Value::Null
    );

    a.set(2, 0, 0.1, 100);
    wait_for("a fresh again", || {
        let m = admin_get(&lb, "/metrics");
        value(&m, "ringlb_backend_engine_running", a.addr, "") == Some(2.0)
    });
}

#[test]
fn a_stalled_engine_gets_no_new_stream_until_its_generation_counter_moves() {
    let (a, b) = (Engine::spawn("a"), Engine::spawn("b"));
    // a has work and produces no token; b is idle (an idle engine never stalls).
    a.set(2, 0, 0.3, 500);
    b.set(0, 0, 0.0, 9);
    let lb = run(FAST, &[&a, &b]);
    let stalled = |m: &str, e: &Engine| value(m, "ringlb_backend_engine_stalled", e.addr, "");
    wait_for("a stalled after stall_after", || {
        stalled(&admin_get(&lb, "/metrics"), &a) == Some(1.0)
    });
    let m = admin_get(&lb, "/metrics");
    assert_eq!(stalled(&m, &b), Some(0.0), "{m}");
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(&lb, "/status")).expect("status is JSON");
    let backend_a = &status["pools"][0]["backends"][0];
    assert_eq!(backend_a["health"]["state"], "down (stalled)", "{status}");
    assert_eq!(backend_a["engine"]["stalled"], true);
    assert_eq!(backend_a["state"], "down");

    let lb_addr = addr(&lb.server);
    let held: Vec<(TcpStream, String)> = (0..6).map(|_| open_stream(lb_addr)).collect();
    for (_, name) in &held {
        assert_eq!(name, "b", "no new stream goes to a stalled engine");
    }

    a.set(2, 0, 0.3, 501);
    wait_for("a no longer stalled", || {
        stalled(&admin_get(&lb, "/metrics"), &a) == Some(0.0)
    });
    // Idle from here, so a slow host cannot see it stall again before the streams below.
    a.set(0, 0, 0.3, 501);
    // b holds 6 streams and a none: least connections sends the next ones to a.
    let more: Vec<(TcpStream, String)> = (0..3).map(|_| open_stream(lb_addr)).collect();
    for (_, name) in &more {
        assert_eq!(name, "a", "a takes streams again");
    }
}

#[test]
fn auto_detects_the_engine_and_a_pool_without_engine_metrics_shows_none() {
    let a = Engine::spawn("a");
    a.set(5, 2, 0.75, 1);
    let lb = run("interval = \"50ms\"\ntimeout = \"50ms\"\n", &[&a]);
    wait_for("auto found vLLM's series", || {
        value(
            &admin_get(&lb, "/metrics"),
            "ringlb_backend_engine_running",
            a.addr,
            "",
        ) == Some(5.0)
    });

    let plain = ringlb::tools::fleet::MockBackend::spawn(ringlb::tools::fleet::MockOptions {
        name: "plain".into(),
        worker_threads: 1,
        ..Default::default()
    })
    .expect("mock");
    let text = pool_config("", &[""]).replace("{B0}", &plain.addr().to_string())
        + "[admin]\nbind = \"127.0.0.1:0\"\n";
    let cfg = config::parse(&text, "plain.toml").expect("config");
    let server = Server::start(&cfg).expect("server");
    let control = ControlPlane::start().expect("control");
    let state = Arc::new(admin::AdminState::new(server.observer(), &cfg));
    let admin = admin::start(control.handle(), &cfg, state)
        .expect("admin")
        .expect("configured");
    let _scraper = EngineScraper::spawn(control.handle(), server.table().clone());
    let r = Running {
        _scraper,
        admin,
        _control: control,
        server,
    };
    let m = admin_get(&r, "/metrics");
    assert_eq!(
        value(&m, "ringlb_backend_engine_fresh", plain.addr(), ""),
        None
    );
    assert_eq!(
        value(&m, "ringlb_backend_engine_stalled", plain.addr(), ""),
        None
    );
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(&r, "/status")).expect("status is JSON");
    assert_eq!(
        status["pools"][0]["backends"][0]["engine"],
        serde_json::Value::Null
    );
}

#[test]
fn the_binary_logs_each_transition_once_not_each_scrape() {
    use common::process::Proc;
    let a = Engine::spawn("a");
    a.set(2, 0, 0.3, 40);
    let auto = FAST.replace("flavor = \"vllm\"\n", "");
    let config = pool_config(&format!("[pool.engine_metrics]\n{auto}"), &[""])
        .replace("{B0}", &a.addr.to_string());
    let p = Proc::run("engine-metrics", &config, &[]);
    let backend = a.addr.to_string();
    p.wait_line(&["engine metrics: found the engine's series", "engine=vllm"]);
    let stalled_line =
        format!("pool p backend {backend} stalled: 2 running, generation counter unchanged for");
    p.wait_line(&[&stalled_line]);
    a.wait_scrapes(5);
    a.set(2, 0, 0.3, 41);
    p.wait_line(&["backend no longer stalled", "generation counter moving"]);
    a.set(0, 0, 0.3, 41);
    assert_eq!(p.lines_with(&[&stalled_line]).len(), 1, "{:#?}", p.lines());

    a.silence();
    p.wait_line(&["engine metrics scrape fails", &backend]);
    a.wait_scrapes(5);
    a.set(0, 0, 0.0, 41);
    p.wait_line(&["engine metrics scrape works again", &backend]);
    assert_eq!(
        p.lines_with(&["engine metrics scrape fails"]).len(),
        1,
        "{:#?}",
        p.lines()
    );
    assert_eq!(
        p.lines_with(&["engine metrics: found the engine's series"])
            .len(),
        1,
        "found once, kept while its series are there"
    );
}

#[test]
fn a_reload_that_drops_the_table_forgets_the_readings_and_clears_the_stall() {
    use common::process::{field, Proc};
    let (a, b, c) = (Engine::spawn("a"), Engine::spawn("b"), Engine::spawn("c"));
    a.set(2, 0, 0.3, 40);
    b.set(0, 0, 0.0, 1);
    c.set(0, 0, 0.0, 1);
    // Pool q (no listener) keeps scraping c throughout: a clock made of scrapes.
    let with = |pool_keys: &str| {
        pool_config(pool_keys, &["", ""])
            .replace("{B0}", &a.addr.to_string())
            .replace("{B1}", &b.addr.to_string())
            + &format!(
                "[[pool]]\nname = \"q\"\n[pool.engine_metrics]\n{FAST}[[pool.backend]]\n\
                 addr = \"{}\"\n[admin]\nbind = \"127.0.0.1:0\"\n",
                c.addr
            )
    };
    let p = Proc::run(
        "engine-metrics-reload",
        &with(&format!("[pool.engine_metrics]\n{FAST}")),
        &[],
    );
    let admin: SocketAddr = field(&p.wait_line(&["admin API listening"]), "addr")
        .parse()
        .expect("admin addr");
    let scrape = || {
        let mut s = TcpStream::connect(admin).expect("connect to admin");
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("admin reply");
        text
    };
    p.wait_line(&["stalled: 2 running"]);
    let m = scrape();
    assert_eq!(
        value(&m, "ringlb_backend_engine_stalled", a.addr, ""),
        Some(1.0)
    );

    std::fs::write(&p.config, with("")).unwrap();
    p.signal(nix::sys::signal::Signal::SIGHUP);
    p.wait_line(&["config reloaded"]);
    p.wait_line(&[
        "backend no longer stalled: engine metrics no longer scraped",
        &a.addr.to_string(),
    ]);
    let m = scrape();
    assert_eq!(
        value(&m, "ringlb_backend_engine_stalled", a.addr, ""),
        None,
        "{m}"
    );
    assert_eq!(value(&m, "ringlb_backend_engine_fresh", a.addr, ""), None);
    let up = format!(
        "ringlb_backend_state{{pool=\"p\",backend=\"{}\",state=\"up\"}} 1",
        a.addr
    );
    assert!(m.contains(&up), "a takes streams again\n{m}");
    let (from_a, from_b) = (
        a.scrapes.load(Ordering::SeqCst),
        b.scrapes.load(Ordering::SeqCst),
    );
    c.wait_scrapes(5);
    // One scrape may have been in flight at the reload.
    assert!(
        a.scrapes.load(Ordering::SeqCst) <= from_a + 1,
        "a no longer scraped"
    );
    assert!(
        b.scrapes.load(Ordering::SeqCst) <= from_b + 1,
        "b no longer scraped"
    );
    let lb = p.listener("test");
    let held: Vec<(TcpStream, String)> = (0..4).map(|_| open_stream(lb)).collect();
    assert!(held.iter().any(|(_, n)| n == "a"), "a picked again");
}

#[test]
fn port_scrapes_a_sidecar_on_the_backends_ip() {
    let (a, sidecar) = (Engine::spawn("a"), Engine::spawn("sidecar"));
    a.set(1, 0, 0.1, 1);
    sidecar.set(6, 3, 0.5, 1);
    let keys = format!("{FAST}port = {}\n", sidecar.addr.port());
    let lb = run(&keys, &[&a]);
    wait_for("the sidecar's reading, under a's address", || {
        value(
            &admin_get(&lb, "/metrics"),
            "ringlb_backend_engine_running",
            a.addr,
            "",
        ) == Some(6.0)
    });
    assert_eq!(
        a.scrapes.load(Ordering::SeqCst),
        0,
        "a itself is not scraped"
    );
}
