//! The mock backend as an inference engine for load-aware balancing, over real sockets:
//! engine metrics in vLLM's, SGLang's and TGI's names (read by a real Prometheus parser),
//! phantom external load, slowdown, the KV budget's queue, completion lengths, and stalls.
//! (The mock's HTTP, SSE, WebSocket and raw modes are tested in `fleet.rs`.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prometheus_parse::{LineInfo, Scrape, Value};
use ringlb::tools::fleet::{
    FleetError, MetricsFlavor, MockBackend, MockOptions, TokenDist, DEFAULT_PROMPT_TOKENS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(20);

fn opts(name: &str) -> MockOptions {
    MockOptions {
        name: name.to_string(),
        tokens_per_sec: 50.0,
        ttft: Duration::from_millis(1),
        ..MockOptions::default()
    }
}

fn completion(body: &str) -> String {
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends one request with `Connection: close`; returns the status and the body.
async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    http(addr, &req).await
}

/// Stands in for `:` in metric names while prometheus-parse reads them: its name pattern is
/// `\w+`, which refuses the colons that vLLM and SGLang use (valid in the format, whose
/// names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, and checked against that grammar here first).
const COLON: &str = "_COLON_";

/// `line` with the colons of its metric name (not of label values) replaced by [`COLON`].
fn parseable(line: &str) -> String {
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
async fn scrape(addr: SocketAddr) -> Scrape {
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
fn value(s: &Scrape, metric: &str) -> f64 {
    let sample = s.samples.iter().find(|x| x.metric == metric);
    match sample.map(|x| &x.value) {
        Some(Value::Gauge(v)) | Some(Value::Counter(v)) => *v,
        other => panic!("{metric}: {other:?}"),
    }
}

/// Scrapes until `ok` holds; fails after [`DEADLINE`].
async fn wait_for(addr: SocketAddr, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
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
async fn open_stream(addr: SocketAddr, prompt: &str, max_tokens: u64) -> TcpStream {
    let body = format!(r#"{{"prompt":"{prompt}","max_tokens":{max_tokens},"stream":true}}"#);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(completion(&body).as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn vllm_metrics_follow_running_waiting_kv_and_generation() {
    let backend = MockBackend::start(MockOptions {
        capacity: 2,
        ..opts("v1")
    })
    .await
    .unwrap();
    let addr = backend.addr();
    let s = scrape(addr).await;
    let running = s
        .samples
        .iter()
        .find(|x| x.metric == "vllm:num_requests_running");
    let running = running.expect("running is reported");
    assert!(matches!(running.value, Value::Gauge(v) if v == 0.0));
    assert_eq!(running.labels.get("model_name"), Some("v1"));
    assert!(matches!(
        s.samples
            .iter()
            .find(|x| x.metric == "vllm:generation_tokens_total")
            .map(|x| &x.value),
        Some(Value::Counter(_))
    ));
    assert_eq!(value(&s, "vllm:kv_cache_usage_perc"), 0.0);

    let _a = open_stream(addr, "hello", 100_000).await;
    let _b = open_stream(addr, "hello", 100_000).await;
    let _c = open_stream(addr, "hello", 100_000).await;
    let s = wait_for(addr, "two running, one waiting", |s| {
        value(s, "vllm:num_requests_running") == 2.0 && value(s, "vllm:num_requests_waiting") == 1.0
    })
    .await;
    // Without a KV budget the usage is the slots in use, under both names.
    assert_eq!(value(&s, "vllm:kv_cache_usage_perc"), 1.0);
    assert_eq!(value(&s, "vllm:gpu_cache_usage_perc"), 1.0);
    assert_eq!(
        value(&s, "vllm:prompt_tokens_total"),
        4.0,
        "two prompts of 2 tokens"
    );
    let before = value(&s, "vllm:generation_tokens_total");
    wait_for(addr, "the generation counter moves", |s| {
        value(s, "vllm:generation_tokens_total") >= before + 10.0
    })
    .await;
    drop((_a, _b, _c));
    wait_for(addr, "all released", |s| {
        value(s, "vllm:num_requests_running") == 0.0 && value(s, "vllm:num_requests_waiting") == 0.0
    })
    .await;
}

#[tokio::test]
async fn sglang_and_tgi_flavors_speak_their_own_names() {
    let start = |name: &str, flavor| {
        MockBackend::start(MockOptions {
            metrics_flavor: flavor,
            external_load: 1,
            max_tokens_dist: TokenDist::Fixed(3),
            tokens_per_sec: 200.0,
            ..opts(name)
        })
    };
    let sglang = start("sg", MetricsFlavor::Sglang).await.unwrap();
    let tgi = start("tg", MetricsFlavor::Tgi).await.unwrap();
    let s = wait_for(sglang.addr(), "sglang counts tokens", |s| {
        value(s, "sglang:generation_tokens_total") >= 6.0
    })
    .await;
    assert!(value(&s, "sglang:num_running_reqs") <= 1.0);
    assert_eq!(value(&s, "sglang:num_queue_reqs"), 0.0);
    assert!((0.0..=1.0).contains(&value(&s, "sglang:token_usage")));
    assert!(s.samples.iter().all(|x| !x.metric.starts_with("vllm:")));
    assert!(s
        .samples
        .iter()
        .all(|x| x.labels.get("model_name") == Some("sg")));
    // TGI counts generated tokens per finished request, in a histogram.
    let s = wait_for(tgi.addr(), "tgi finishes requests", |s| {
        value(s, "tgi_request_success") >= 2.0
    })
    .await;
    assert!(value(&s, "tgi_batch_current_size") <= 1.0);
    assert_eq!(value(&s, "tgi_queue_size"), 0.0);
    let hist = s
        .samples
        .iter()
        .find(|x| x.metric == "tgi_request_generated_tokens");
    match hist.map(|x| &x.value) {
        Some(Value::Histogram(buckets)) => assert!(buckets.last().unwrap().count >= 2.0),
        other => panic!("tgi_request_generated_tokens: {other:?}"),
    }
}

#[tokio::test]
async fn external_load_runs_without_clients_and_takes_the_capacity() {
    let backend = MockBackend::start(MockOptions {
        capacity: 3,
        external_load: 3,
        max_tokens_dist: TokenDist::Fixed(100_000),
        ..opts("x1")
    })
    .await
    .unwrap();
    let addr = backend.addr();
    let s = wait_for(addr, "three phantom streams generating", |s| {
        value(s, "vllm:num_requests_running") == 3.0
            && value(s, "vllm:generation_tokens_total") > 3.0
    })
    .await;
    assert_eq!(
        value(&s, "vllm:prompt_tokens_total"),
        3.0 * DEFAULT_PROMPT_TOKENS as f64
    );
    // Generation requests so far are the phantoms' own: no client sent one.
    assert_eq!(backend.stats().snapshot().total_requests, 3);
    let _client = open_stream(addr, "hello", 5).await;
    let s = wait_for(addr, "the client waits behind the external load", |s| {
        value(s, "vllm:num_requests_waiting") == 1.0
    })
    .await;
    assert_eq!(value(&s, "vllm:num_requests_running"), 3.0);
}

#[tokio::test]
async fn phantom_streams_restart_so_the_external_load_stays() {
    let backend = MockBackend::start(MockOptions {
        capacity: 8,
        external_load: 2,
        max_tokens_dist: TokenDist::Fixed(2),
        tokens_per_sec: 500.0,
        ..opts("x2")
    })
    .await
    .unwrap();
    let stats = backend.stats();
    let deadline = Instant::now() + DEADLINE;
    while stats.snapshot().total_streams < 10 {
        assert!(Instant::now() < deadline, "phantoms do not restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = stats.snapshot();
    assert!(s.active <= 2 && s.waiting == 0, "{s:?}");
    assert!(s.total_requests - s.total_streams <= 2, "{s:?}");
    assert_eq!(s.aborted_streams, 0);
}

/// Time for one non-streamed completion of `tokens` tokens.
async fn timed(addr: SocketAddr, tokens: u64) -> Duration {
    let started = Instant::now();
    let body = format!(r#"{{"prompt":"p","max_tokens":{tokens}}}"#);
    let (status, body) = http(addr, &completion(&body)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], tokens);
    started.elapsed()
}

#[tokio::test]
async fn slowdown_two_makes_a_fixed_request_take_about_twice_as_long() {
    let base = MockOptions {
        tokens_per_sec: 100.0,
        ttft: Duration::from_millis(20),
        ..opts("s1")
    };
    let normal = MockBackend::start(base.clone()).await.unwrap();
    let slow = MockBackend::start(MockOptions {
        name: "s2".to_string(),
        slowdown: 2.0,
        ..base
    })
    .await
    .unwrap();
    // Interleaved, best of two each: a hiccup of a shared CI machine hits one run, not both.
    let mut fast = Duration::MAX;
    let mut slower = Duration::MAX;
    for _ in 0..2 {
        fast = fast.min(timed(normal.addr(), 40).await);
        slower = slower.min(timed(slow.addr(), 40).await);
    }
    let ratio = slower.as_secs_f64() / fast.as_secs_f64();
    eprintln!("slowdown 1: {fast:?}, slowdown 2: {slower:?}, ratio {ratio:.3}");
    assert!(
        (1.6..=2.6).contains(&ratio),
        "slowdown 2: {slower:?} against {fast:?} (ratio {ratio:.2})"
    );
}

#[tokio::test]
async fn kv_budget_makes_a_request_wait_while_slots_are_free() {
    let backend = MockBackend::start(MockOptions {
        capacity: 4,
        kv_tokens: Some(1000),
        ..opts("kv")
    })
    .await
    .unwrap();
    let addr = backend.addr();
    // "hello" counts 2 prompt tokens: A reserves 602 of 1000, B's 502 do not fit beside it.
    let a = open_stream(addr, "hello", 600).await;
    wait_for(addr, "A runs", |s| {
        value(s, "vllm:num_requests_running") == 1.0
    })
    .await;
    let _b = open_stream(addr, "hello", 500).await;
    let s = wait_for(addr, "B waits for KV", |s| {
        value(s, "vllm:num_requests_waiting") == 1.0
    })
    .await;
    assert_eq!(
        value(&s, "vllm:num_requests_running"),
        1.0,
        "3 of 4 slots are free"
    );
    assert!((value(&s, "vllm:kv_cache_usage_perc") - 0.602).abs() < 1e-9);
    assert_eq!(backend.stats().snapshot().kv_used_tokens, 602);
    // A request that could never fit is refused rather than queued forever.
    let body = r#"{"prompt":"hello","max_tokens":2000,"stream":true}"#;
    let (status, detail) = http(addr, &completion(body)).await;
    assert_eq!(status, 400);
    assert!(detail.contains("KV budget is 1000"), "{detail}");
    drop(a);
    let s = wait_for(addr, "B runs once A's KV is freed", |s| {
        value(s, "vllm:num_requests_waiting") == 0.0 && value(s, "vllm:num_requests_running") == 1.0
    })
    .await;
    assert!((value(&s, "vllm:kv_cache_usage_perc") - 0.502).abs() < 1e-9);
}

/// `usage.completion_tokens` of a non-streamed completion.
async fn completion_tokens(addr: SocketAddr, body: &str) -> u64 {
    let (status, body) = http(addr, &completion(body)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["usage"]["completion_tokens"].as_u64().unwrap()
}

#[tokio::test]
async fn the_length_distribution_decides_only_when_the_request_does_not() {
    let backend = MockBackend::start(MockOptions {
        max_tokens_dist: TokenDist::Fixed(7),
        tokens_per_sec: 1000.0,
        ..opts("d1")
    })
    .await
    .unwrap();
    let addr = backend.addr();
    assert_eq!(completion_tokens(addr, r#"{"prompt":"p"}"#).await, 7);
    assert_eq!(completion_tokens(addr, r#"{"max_tokens":null}"#).await, 7);
    assert_eq!(
        completion_tokens(addr, r#"{"prompt":"p","max_tokens":3}"#).await,
        3
    );
}

/// The generation counter, read twice `gap` apart.
async fn counter_over(addr: SocketAddr, gap: Duration) -> (f64, f64) {
    let first = value(&scrape(addr).await, "vllm:generation_tokens_total");
    tokio::time::sleep(gap).await;
    (
        first,
        value(&scrape(addr).await, "vllm:generation_tokens_total"),
    )
}

#[tokio::test]
async fn stall_freezes_the_generation_counter_and_unstall_resumes_at_pace() {
    let backend = MockBackend::start(opts("st")).await.unwrap();
    let addr = backend.addr();
    let _stream = open_stream(addr, "hello", 100_000).await;
    wait_for(addr, "tokens flow", |s| {
        value(s, "vllm:generation_tokens_total") > 2.0
    })
    .await;
    // Through the HTTP control path, as a test driving a separate process would.
    assert_eq!(
        post(addr, "/admin/stall").await,
        (200, "stalled".to_string())
    );
    assert!(backend.stalled());
    // A batch already being written when the stall began may still land: let it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (frozen, later) = counter_over(addr, Duration::from_millis(600)).await;
    assert_eq!(frozen, later, "tokens were emitted while stalled");
    let s = scrape(addr).await;
    assert_eq!(
        value(&s, "vllm:num_requests_running"),
        1.0,
        "the stream stays running"
    );
    backend.unstall();
    let s = wait_for(addr, "generation resumes", |s| {
        value(s, "vllm:generation_tokens_total") > frozen
    })
    .await;
    // 700 ms of stall at 50 tokens/s would be 35 tokens if the schedule burst to catch up.
    let resumed = value(&s, "vllm:generation_tokens_total") - frozen;
    assert!(resumed <= 10.0, "{resumed} tokens at once after the stall");
    assert_eq!(post(addr, "/admin/unstall").await.0, 200);
    assert!(!backend.stalled());
}

#[test]
fn new_options_are_validated() {
    let bad = [
        (
            "slowdown",
            MockOptions {
                slowdown: 0.0,
                ..MockOptions::default()
            },
        ),
        (
            "slowdown",
            MockOptions {
                slowdown: f64::NAN,
                ..MockOptions::default()
            },
        ),
        (
            "kv_tokens",
            MockOptions {
                kv_tokens: Some(DEFAULT_PROMPT_TOKENS),
                ..MockOptions::default()
            },
        ),
        (
            "external_load",
            MockOptions {
                external_load: 1,
                tokens_per_sec: f64::INFINITY,
                ..MockOptions::default()
            },
        ),
        (
            "max_tokens_dist",
            MockOptions {
                max_tokens_dist: TokenDist::Fixed(0),
                ..MockOptions::default()
            },
        ),
    ];
    for (want, opts) in bad {
        match MockBackend::spawn(opts) {
            Err(FleetError::InvalidOption { field, .. }) => assert_eq!(field, want),
            other => panic!(
                "expected InvalidOption {want}, got {:?}",
                other.map(|b| b.addr())
            ),
        }
    }
}

/// The `ringlb mock-backend` process with `args`, and the address it printed once listening.
fn mock_process(args: &[&str]) -> (std::process::Child, SocketAddr) {
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

#[test]
fn the_cli_flags_reach_the_backend_and_bad_ones_exit_2() {
    let (mut child, addr) = mock_process(&[
        "--metrics-flavor",
        "sglang",
        "--external-load",
        "2",
        "--max-tokens-dist",
        "lognormal:median=2000,sigma=0.5,max=5000",
        "--slowdown",
        "1.5",
        "--kv-tokens",
        "100000",
        "--prompt-tokens",
        "64",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = wait_for(addr, "two phantom streams", |s| {
            value(s, "sglang:num_running_reqs") == 2.0
        })
        .await;
        assert_eq!(value(&s, "sglang:prompt_tokens_total"), 128.0);
        assert!(value(&s, "sglang:token_usage") > 0.0, "phantoms reserve KV");
        assert_eq!(
            post(addr, "/admin/stall").await,
            (200, "stalled".to_string())
        );
        assert_eq!(
            post(addr, "/admin/unstall").await,
            (200, "running".to_string())
        );
    });
    let _ = child.kill();
    let _ = child.wait();

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args([
            "mock-backend",
            "--listen",
            "127.0.0.1:0",
            "--max-tokens-dist",
            "zipf:1",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown distribution \"zipf\""), "{stderr}");
}
