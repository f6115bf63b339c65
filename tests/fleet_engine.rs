//! The mock backend as an inference engine for load-aware balancing, over real sockets:
//! engine metrics in vLLM's, SGLang's and TGI's names (read by a real Prometheus parser),
//! phantom external load, stalls, and the CLI flags of a `ringlb mock-backend` process.
//! Slowdown, the KV budget and completion lengths are in `fleet_capacity.rs`; the mock's HTTP,
//! SSE, WebSocket and raw modes in `fleet.rs`.

mod mock_engine;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mock_engine::*;
use prometheus_parse::Value;
use ringlb::tools::fleet::{
    MetricsFlavor, MockBackend, MockOptions, TokenDist, DEFAULT_PROMPT_TOKENS,
};

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
