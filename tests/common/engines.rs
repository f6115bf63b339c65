//! Mock GPU engines for the load-aware tests (`least_load.rs`, `multi_instance.rs`): engines
//! slow enough that a stream outlives the test, their load read from their own `/metrics`, a
//! ringlb config that scrapes them, and streams opened at a steady pace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringlb::tools::fleet::{MockBackend, MockOptions};

use super::{connect, DEADLINE};

/// A mock GPU with `capacity` slots, slow enough that a stream outlives the test, and
/// `external` phantom streams of load from elsewhere.
pub fn gpu(name: &str, capacity: usize, external: usize) -> MockBackend {
    MockBackend::spawn(MockOptions {
        name: name.into(),
        capacity,
        external_load: external,
        tokens_per_sec: 2.0,
        ttft: Duration::from_millis(1),
        ..MockOptions::default()
    })
    .expect("mock GPU starts")
}

/// `(running, waiting)` of a mock, from its own `/metrics`.
pub fn engine_load(addr: SocketAddr) -> (f64, f64) {
    let mut s = TcpStream::connect(addr).expect("metrics connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("metrics body");
    let series = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        series("vllm:num_requests_running"),
        series("vllm:num_requests_waiting"),
    )
}

/// A long SSE completion through `lb`; the stream stays open while the value lives.
pub fn open_stream(lb: SocketAddr) -> TcpStream {
    let body = r#"{"prompt":"hi","max_tokens":100000,"stream":true}"#;
    let mut s = connect(lb);
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

pub fn config(balance: &str, metrics_path: &str, gpus: &[&MockBackend]) -> String {
    let mut t = format!(
        "[runtime]\nworkers = 2\n[[listener]]\nname = \"api\"\nbind = \"127.0.0.1:0\"\n\
         pool = \"gpu\"\n[[pool]]\nname = \"gpu\"\nbalance = \"{balance}\"\n\
         [pool.engine_metrics]\npath = \"{metrics_path}\"\ninterval = \"100ms\"\n\
         stale_after = \"1s\"\nflavor = \"vllm\"\n[admin]\nbind = \"127.0.0.1:0\"\n"
    );
    for g in gpus {
        t += &format!("[[pool.backend]]\naddr = \"{}\"\n", g.addr());
    }
    t
}

/// Opens `n` streams, one every 60 ms (a steady arrival, not a wait: clients of a real
/// fleet arrive over time, and least_load sees another instance's streams one scrape
/// later), round robin over `lbs`.
pub fn open_paced(lbs: &[SocketAddr], n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let s = open_stream(lbs[i % lbs.len()]);
            std::thread::sleep(Duration::from_millis(60));
            s
        })
        .collect()
}

/// Waits until the GPUs hold `total` requests between them; returns each one's share.
pub fn settled(gpus: &[&MockBackend], total: f64) -> Vec<f64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let loads: Vec<f64> = gpus
            .iter()
            .map(|g| {
                let (r, w) = engine_load(g.addr());
                r + w
            })
            .collect();
        if loads.iter().sum::<f64>() == total {
            return loads;
        }
        assert!(
            Instant::now() < deadline,
            "GPUs never held {total}: {loads:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The admin address of a ringlb process (from its log).
pub fn admin_addr(p: &super::process::Proc) -> SocketAddr {
    super::process::field(&p.wait_line(&["admin API listening"]), "addr")
        .parse()
        .unwrap()
}

/// Waits until every scraped backend of the process at `admin` has a fresh reading.
pub fn wait_fresh(admin: SocketAddr, backends: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut s = TcpStream::connect(admin).expect("admin connect");
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("admin metrics");
        let fresh = text
            .lines()
            .filter(|l| l.starts_with("ringlb_backend_engine_fresh") && l.ends_with(" 1"))
            .count();
        if fresh >= backends {
            return;
        }
        assert!(Instant::now() < deadline, "readings never fresh:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
