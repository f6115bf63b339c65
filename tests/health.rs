//! Active health checks and the passive policy through the real balancer: mock inference
//! backends whose `/health` says 503 or hangs, a closed port, a WebSocket endpoint, probes
//! counted at the backend with two workers, live streams kept or reset when a backend goes
//! down, and a backend that resets every stream before a byte (`passive_early_close`).
//! Intervals are tens of milliseconds, so every test takes well under a few seconds; every
//! wait is on a condition with a deadline.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use ringlb::balance::{CheckFailure, CheckStatus, DownCause, HealthState};
use ringlb::control::ControlPlane;
use ringlb::engine::Server;
use ringlb::health::Checker;
use ringlb::tools::fleet::{HealthMode, MockBackend, MockOptions};

/// ringlb, its control plane and the checker, stopped in that order on drop.
struct Running {
    _checker: Checker,
    _control: ControlPlane,
    server: Server,
}

fn run(cfg: &str, backends: &[SocketAddr]) -> Running {
    let server = start(cfg, backends);
    let control = ControlPlane::start().expect("control plane");
    let checker = Checker::spawn(control.handle(), server.table().clone());
    Running {
        _checker: checker,
        _control: control,
        server,
    }
}

fn mock(name: &str) -> MockBackend {
    MockBackend::spawn(MockOptions {
        name: name.to_string(),
        worker_threads: 1,
        ..MockOptions::default()
    })
    .expect("mock backend")
}

/// The check status of every backend of pool 0, in config order.
fn checks(server: &Server) -> Vec<CheckStatus> {
    server.table().load().snapshot(ringlb::clock::now_ms())[0]
        .backends
        .iter()
        .map(|b| b.check)
        .collect()
}

fn health(server: &Server) -> Vec<HealthState> {
    server.table().load().snapshot(ringlb::clock::now_ms())[0]
        .backends
        .iter()
        .map(|b| b.health)
        .collect()
}

/// One `GET /metrics` through ringlb on a fresh connection: the `x-backend` that answered.
fn served_by(addr: SocketAddr) -> String {
    let mut s = connect(addr);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    backend_of(&answer)
}

fn backend_of(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("x-backend: "))
        .unwrap_or_else(|| panic!("no x-backend in {answer:?}"))
        .trim()
        .to_string()
}

const HTTP_CHECK: &str = "[pool.health]\ncheck = \"http\"\npath = \"/health\"\n\
                          interval = \"50ms\"\ntimeout = \"40ms\"\nrise = 3\nfall = 2";

#[test]
fn a_warming_backend_gets_no_stream_until_rise_passes_in_a_row() {
    let (a, b) = (mock("a"), mock("b"));
    b.set_health(HealthMode::Unhealthy);
    let lb = run(&pool_config(HTTP_CHECK, &["", ""]), &[a.addr(), b.addr()]);
    let server = &lb.server;
    wait_for("a up, b down by 503", || {
        checks(server)
            == vec![
                CheckStatus::Up,
                CheckStatus::Down(CheckFailure::Status(503)),
            ]
    });
    assert_eq!(
        health(server)[1],
        HealthState::Down(DownCause::Check(CheckFailure::Status(503)))
    );
    for _ in 0..20 {
        assert_eq!(
            served_by(addr(server)),
            "a",
            "no stream goes to a down backend"
        );
    }
    let before = b.health_checks();
    b.set_health(HealthMode::Ok);
    wait_for("b back up", || checks(server)[1] == CheckStatus::Up);
    assert!(
        b.health_checks() - before >= 3,
        "up only after rise = 3 passes ({} checks)",
        b.health_checks() - before
    );
    let mut hits_b = 0;
    for _ in 0..40 {
        if served_by(addr(server)) == "b" {
            hits_b += 1;
        }
    }
    assert!(hits_b > 0, "b takes streams again once up");
}

#[test]
fn a_backend_whose_health_turns_503_takes_no_new_stream_and_keeps_its_live_ones() {
    let (a, b) = (mock("a"), mock("b"));
    let lb = run(&pool_config(HTTP_CHECK, &["", ""]), &[a.addr(), b.addr()]);
    let server = &lb.server;
    wait_for("both up", || checks(server) == vec![CheckStatus::Up; 2]);
    // A kept-alive stream on b: requests on it keep working after b goes down.
    let mut live = loop {
        let mut s = connect(addr(server));
        if metrics_on(&mut s) == "b" {
            break s;
        }
    };
    b.set_health(HealthMode::Unhealthy);
    let marked = Instant::now();
    wait_for("b down", || checks(server)[1] != CheckStatus::Up);
    // fall = 2 at 50 ms: two checks, plus up to one interval of phase.
    assert!(
        marked.elapsed() < Duration::from_secs(2),
        "{:?}",
        marked.elapsed()
    );
    for _ in 0..20 {
        assert_eq!(served_by(addr(server)), "a");
    }
    assert_eq!(
        metrics_on(&mut live),
        "b",
        "on_down = keep: the live stream still works"
    );
}

/// One keep-alive `GET /metrics` on `s`: the backend that answered.
fn metrics_on(s: &mut TcpStream) -> String {
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("answer");
        assert!(n > 0, "closed mid-answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..head_end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        if buf.len() >= head_end + 4 + length {
            return backend_of(&text[..head_end]);
        }
    }
}

#[test]
fn on_down_reset_resets_the_live_streams_of_a_backend_taken_down() {
    let (a, b) = (mock("a"), mock("b"));
    let cfg = pool_config(&format!("{HTTP_CHECK}\non_down = \"reset\""), &["", ""]);
    let lb = run(&cfg, &[a.addr(), b.addr()]);
    let server = &lb.server;
    wait_for("both up", || checks(server) == vec![CheckStatus::Up; 2]);
    let (mut on_a, mut on_b) = (None, None);
    while on_a.is_none() || on_b.is_none() {
        let mut s = connect(addr(server));
        match metrics_on(&mut s).as_str() {
            "a" => on_a = Some(s),
            _ => on_b = Some(s),
        }
    }
    let (mut on_a, mut on_b) = (on_a.unwrap(), on_b.unwrap());
    b.set_health(HealthMode::Unhealthy);
    assert!(ends_with_reset(&mut on_b), "the stream on b is reset");
    assert_eq!(metrics_on(&mut on_a), "a", "the stream on a is untouched");
}

#[test]
fn a_hung_backend_goes_down_by_the_http_timeout() {
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_addr = hung.local_addr().unwrap();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let keep = held.clone();
    thread::spawn(move || {
        for s in hung.incoming().flatten() {
            keep.lock().unwrap().push(s); // accepted, never answered
        }
    });
    let a = mock("a");
    let cfg = pool_config(
        "[pool.health]\ninterval = \"60ms\"\ntimeout = \"30ms\"\nfall = 2\nstart = \"up\"",
        &["", ""],
    );
    let lb = run(&cfg, &[a.addr(), hung_addr]);
    wait_for("hung backend down by timeout", || {
        checks(&lb.server) == vec![CheckStatus::Up, CheckStatus::Down(CheckFailure::Timeout)]
    });
    assert!(!held.lock().unwrap().is_empty(), "it did accept the checks");
    assert_eq!(served_by(addr(&lb.server)), "a");
}

#[test]
fn a_mock_whose_health_hangs_goes_down_by_timeout_too() {
    let a = mock("a");
    a.set_health(HealthMode::Hang);
    let cfg = pool_config(
        "[pool.health]\ninterval = \"60ms\"\ntimeout = \"30ms\"\nfall = 1",
        &[""],
    );
    let lb = run(&cfg, &[a.addr()]);
    wait_for("down by timeout", || {
        checks(&lb.server) == vec![CheckStatus::Down(CheckFailure::Timeout)]
    });
}

#[test]
fn a_tcp_check_takes_a_closed_port_down_as_refused() {
    let open = echo_backend();
    let (_socket, closed) = refusing_backend();
    let cfg = pool_config(
        "[pool.health]\ncheck = \"tcp\"\ninterval = \"50ms\"\ntimeout = \"40ms\"",
        &["", ""],
    );
    let lb = run(&cfg, &[open, closed]);
    wait_for("open up, closed refused", || {
        checks(&lb.server) == vec![CheckStatus::Up, CheckStatus::Down(CheckFailure::Refused)]
    });
    for _ in 0..10 {
        let mut s = connect(addr(&lb.server));
        round_trip(&mut s, b"only the open port serves");
    }
}

#[test]
fn a_websocket_check_passes_a_websocket_endpoint_and_fails_a_plain_one() {
    let ws = mock("ws");
    let echo = echo_backend();
    let cfg = pool_config(
        "[pool.health]\ncheck = \"websocket\"\npath = \"/v1/stream\"\ninterval = \"50ms\"\n\
         timeout = \"40ms\"",
        &["", ""],
    );
    let lb = run(&cfg, &[ws.addr(), echo]);
    wait_for("mock up, echo down", || {
        let c = checks(&lb.server);
        c[0] == CheckStatus::Up && matches!(c[1], CheckStatus::Down(_))
    });
    // The mock's /health is not a WebSocket endpoint: its handshake is refused with 200.
    let plain = mock("plain");
    let cfg = pool_config(
        "[pool.health]\ncheck = \"websocket\"\npath = \"/health\"\ninterval = \"50ms\"\n\
         timeout = \"40ms\"",
        &[""],
    );
    let lb = run(&cfg, &[plain.addr()]);
    wait_for("refused handshake", || {
        checks(&lb.server) == vec![CheckStatus::Down(CheckFailure::Status(200))]
    });
}

#[test]
fn one_check_per_backend_per_interval_with_two_workers() {
    let (a, b) = (mock("a"), mock("b"));
    // pool_config runs two workers.
    let cfg = pool_config(
        "[pool.health]\ninterval = \"100ms\"\ntimeout = \"50ms\"",
        &["", ""],
    );
    let lb = run(&cfg, &[a.addr(), b.addr()]);
    wait_for("both up", || checks(&lb.server) == vec![CheckStatus::Up; 2]);
    let (a0, b0) = (a.health_checks(), b.health_checks());
    let window = Duration::from_millis(1500);
    // A measurement window, not a synchronization: the count over it is the result.
    thread::sleep(window);
    let (da, db) = (a.health_checks() - a0, b.health_checks() - b0);
    // 15 intervals: one check each, +2 for the window's edges; fewer if a loaded machine
    // delays timers. One check per worker would be ~30.
    for (name, n) in [("a", da), ("b", db)] {
        assert!((10..=17).contains(&n), "{name}: {n} checks in {window:?}");
    }
}

#[test]
fn start_unknown_takes_no_stream_before_the_first_pass() {
    let a = mock("a");
    a.set_health(HealthMode::Unhealthy);
    let lb = run(&pool_config(HTTP_CHECK, &[""]), &[a.addr()]);
    // Before or after the first check, a is not up: a client is closed, never relayed.
    let mut s = connect(addr(&lb.server));
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a close, got {other:?}"),
    }
    wait_for("down", || {
        matches!(checks(&lb.server)[0], CheckStatus::Down(_))
    });
}

/// Accepts and resets every connection at once, before sending anything.
fn resetting_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let s = socket2::Socket::from(s);
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    a
}

#[test]
fn passive_early_close_takes_down_a_backend_that_resets_every_stream() {
    let good = hold_backend(1);
    let bad = resetting_backend();
    let cfg = pool_config(
        "passive_failures = 2\npassive_backoff = \"30s\"\npassive_early_close = true",
        &["", ""],
    );
    let lb = run(&cfg, &[good.addr, bad]);
    let mut attempts = 0;
    while health(&lb.server)[1] != HealthState::Down(DownCause::Passive) {
        attempts += 1;
        assert!(attempts < 200, "never marked down");
        let mut s = connect(addr(&lb.server));
        let mut b = [0u8; 1];
        let _ = s.read(&mut b); // a byte from the good one, or the bad one's reset
    }
    for _ in 0..10 {
        let (_s, id) = open_held(addr(&lb.server));
        assert_eq!(id, 1, "the resetting backend takes no stream while down");
    }
}

#[test]
fn without_passive_early_close_resets_after_connect_never_mark_down() {
    let bad = resetting_backend();
    let cfg = pool_config("passive_failures = 1", &[""]);
    let lb = run(&cfg, &[bad]);
    for _ in 0..10 {
        let mut s = connect(addr(&lb.server));
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    }
    assert_eq!(health(&lb.server), vec![HealthState::Up]);
}

/// `when_all_down = "queue"`: with every backend down, new clients wait in the pool queue and
/// are served as soon as one comes back, instead of being closed at once (the default).
#[test]
fn when_all_down_queue_holds_clients_until_a_backend_comes_up() {
    let a = mock("a");
    a.set_health(HealthMode::Unhealthy);
    // Plain keys before the `[pool.health]` table.
    let keys =
        format!("queue_size = 8\nqueue_timeout = \"20s\"\nwhen_all_down = \"queue\"\n{HTTP_CHECK}");
    let lb = run(&pool_config(&keys, &[""]), &[a.addr()]);
    let server = &lb.server;
    wait_for("a down", || {
        matches!(checks(server)[0], CheckStatus::Down(_))
    });
    let to = addr(server);
    let waiting = thread::spawn(move || served_by(to));
    wait_for("the client queued", || server.queue_len(0) == 1);
    a.set_health(HealthMode::Ok);
    assert_eq!(waiting.join().unwrap(), "a", "served once a is back");
    assert_eq!(server.stats().no_backend, 0);
    assert_eq!(server.stats().queued, 1);
}
