//! The mock backend's capacity model over real sockets: slowdown, the KV budget's queue, the
//! completion-length distribution, and the validation of these options.

mod mock_engine;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mock_engine::*;
use ringlb::tools::fleet::{
    FleetError, MockBackend, MockOptions, TokenDist, DEFAULT_PROMPT_TOKENS,
};

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

#[tokio::test]
async fn queued_client_requests_are_counted_and_timed_apart_from_the_external_load() {
    let backend = MockBackend::start(MockOptions {
        capacity: 2,
        external_load: 1,
        // The phantom holds its slot for the whole test, so only A's hang-up frees one.
        max_tokens_dist: TokenDist::Fixed(5000),
        ..opts("q")
    })
    .await
    .unwrap();
    let addr = backend.addr();
    wait_for(addr, "the phantom stream runs", |s| {
        value(s, "vllm:num_requests_running") == 1.0
    })
    .await;
    // A takes the free slot at once; B finds none and queues until A hangs up.
    let a = open_stream(addr, "a", 5000).await;
    wait_for(addr, "A runs", |s| {
        value(s, "vllm:num_requests_running") == 2.0
    })
    .await;
    let s = scrape(addr).await;
    assert_eq!(value(&s, "ringlb_mock_client_requests_queued_total"), 0.0);
    let _b = open_stream(addr, "b", 5000).await;
    wait_for(addr, "B waits", |s| {
        value(s, "vllm:num_requests_waiting") >= 1.0
    })
    .await;
    let waited_from = Instant::now();
    // Long enough that B's wait is measurably more than an admission's microseconds.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(a);
    let s = wait_for(addr, "B was admitted", |s| {
        value(s, "ringlb_mock_client_requests_queued_total") == 1.0
    })
    .await;
    let waited = value(&s, "ringlb_mock_client_queue_seconds_total");
    assert!(
        (0.045..=waited_from.elapsed().as_secs_f64() + 0.05).contains(&waited),
        "B queued {waited} s"
    );
    let histogram = s
        .samples
        .iter()
        .find(|x| x.metric == "vllm:request_queue_time_seconds")
        .expect("the queue-time histogram");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("{:?}", histogram.value);
    };
    let inf = buckets.last().expect("buckets");
    assert!(inf.less_than.is_infinite());
    // The phantom, A and B at least (the phantom's restarts too): every admission is in it.
    assert!(inf.count >= 3.0, "{buckets:?}");
    assert_eq!(backend.stats().snapshot().client_queued, 1);
}
