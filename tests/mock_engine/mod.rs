//! Helpers of the tests of the mock backend as an inference engine (`fleet_engine.rs`,
//! `fleet_capacity.rs`): raw HTTP over real sockets, scrapes read by a Prometheus parser, and
//! waits on a condition with a deadline, never a bare sleep.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prometheus_parse::{LineInfo, Scrape, Value};
use ringlb::tools::fleet::MockOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn opts(name: &str) -> MockOptions {
    MockOptions {
        name: name.to_string(),
        tokens_per_sec: 50.0,
        ttft: Duration::from_millis(1),
        ..MockOptions::default()
    }
}

pub fn completion(body: &str) -> String {
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends one request with `Connection: close`; returns the status and the body.
pub async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

pub async fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    http(addr, &req).await
}

/// Stands in for `:` in metric names while prometheus-parse reads them: its name pattern is
/// `\w+`, which refuses the colons that vLLM and SGLang use (valid in the format, whose
/// names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, and checked against that grammar here first).
pub const COLON: &str = "_COLON_";

/// `line` with the colons of its metric name (not of label values) replaced by [`COLON`].
pub fn parseable(line: &str) -> String {
    let valid = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let (prefix, rest) = match line.strip_prefix("# ") {
        Some(doc) => {
            let (kind, rest) = doc.split_once(' ').expect("# HELP or # TYPE and a name");
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            (format!("# {kind} "), rest)
        }
        None => (String::new(), line),
    };
    let end = rest
        .find(['{', ' '])
        .expect("a name and then labels or a value");
    let name = &rest[..end];
    assert!(valid(name), "invalid metric name {name:?}");
    format!("{prefix}{}{}", name.replace(':', COLON), &rest[end..])
}

/// `/metrics`, parsed; every line is one the parser reads, every family has HELP and TYPE.
pub async fn scrape(addr: SocketAddr) -> Scrape {
    let req = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let (status, body) = http(addr, req).await;
    assert_eq!(status, 200);
    let lines: Vec<String> = body.lines().map(parseable).collect();
    for line in &lines {
        let info = LineInfo::parse(line);
        assert!(
            !matches!(info, LineInfo::Ignored | LineInfo::Empty),
            "unreadable {line:?}"
        );
    }
    let mut parsed = Scrape::parse(lines.iter().map(|l| Ok(l.clone()))).expect("valid");
    for line in lines.iter().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(parsed.docs.contains_key(name), "{name} has no HELP");
    }
    for sample in &mut parsed.samples {
        sample.metric = sample.metric.replace(COLON, ":");
    }
    parsed
}

/// The one sample of `metric`; panics if absent. Gauges and counters must have their type.
pub fn value(s: &Scrape, metric: &str) -> f64 {
    let sample = s.samples.iter().find(|x| x.metric == metric);
    match sample.map(|x| &x.value) {
        Some(Value::Gauge(v)) | Some(Value::Counter(v)) => *v,
        other => panic!("{metric}: {other:?}"),
    }
}

/// Scrapes until `ok` holds; fails after [`DEADLINE`].
pub async fn wait_for(addr: SocketAddr, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = scrape(addr).await;
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts an SSE completion and leaves it running (nobody reads it: it only has to hold a
/// slot, and a few seconds of tokens fit the socket buffers).
pub async fn open_stream(addr: SocketAddr, prompt: &str, max_tokens: u64) -> TcpStream {
    let body = format!(r#"{{"prompt":"{prompt}","max_tokens":{max_tokens},"stream":true}}"#);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(completion(&body).as_bytes()).await.unwrap();
    s
}

/// The `ringlb mock-backend` process with `args`, and the address it printed once listening.
pub fn mock_process(args: &[&str]) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["--log", "warn", "mock-backend", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).expect("the mock says it listens");
    let addr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    (child, addr)
}
