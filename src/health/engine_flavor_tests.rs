//! Scrapes in the engines' real formats: `# HELP`/`# TYPE`, labels, several `model_name`
//! label sets, histograms and Python's `_created` series around the ones we read.

use super::*;
use crate::balance::EngineNames;

/// vLLM v1 (prometheus_client): two models on one server, a labelled counter with no sample
/// yet, a histogram, `_created` gauges.
const VLLM: &str = r#"# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12011.0
python_gc_objects_collected_total{generation="1"} 1802.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.0
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 4.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.25
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 0.625
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1200.0
vllm:generation_tokens_total{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 34.0
# HELP vllm:generation_tokens_created Number of generation tokens processed.
# TYPE vllm:generation_tokens_created gauge
vllm:generation_tokens_created{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.7331e+09
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 9.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 9.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.5
"#;

/// vLLM before the KV gauge's rename.
const VLLM_OLD: &str = r#"# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 7.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
"#;

/// SGLang (`--enable-metrics`).
const SGLANG: &str = r#"# HELP sglang:prompt_tokens_total Number of prefill tokens processed.
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.128902e+06
# HELP sglang:generation_tokens_total Number of generation tokens processed.
# TYPE sglang:generation_tokens_total counter
sglang:generation_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.557572e+06
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28
"#;

/// TGI (the Rust `metrics` exporter): no HELP lines, counters by `method`.
const TGI: &str = r#"# TYPE tgi_batch_inference_count counter
tgi_batch_inference_count{method="prefill"} 41
tgi_batch_inference_count{method="decode"} 9000
# TYPE tgi_queue_size gauge
tgi_queue_size 3
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 8
# TYPE tgi_request_duration histogram
tgi_request_duration_bucket{le="0.5"} 1
tgi_request_duration_bucket{le="+Inf"} 2
tgi_request_duration_sum 1.2
tgi_request_duration_count 2
"#;

fn reading(running: u32, waiting: u32, kv_usage: Option<f64>) -> EngineReading {
    EngineReading {
        running,
        waiting,
        kv_usage,
    }
}

fn read(text: &str, series: &Series) -> EngineSample {
    parse(text)
        .and_then(|p| p.read(series))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn vllm_sums_running_and_waiting_over_models_and_takes_the_fullest_kv_cache() {
    let s = read(VLLM, &Series::vllm());
    assert_eq!(s.reading, reading(5, 5, Some(0.625)));
    assert_eq!(s.generation, Some(1234.0));
}

#[test]
fn older_vllm_is_read_through_the_old_kv_gauge() {
    let s = read(VLLM_OLD, &Series::vllm());
    assert_eq!(s.reading, reading(7, 0, Some(0.9)));
    assert_eq!(s.generation, None, "no counter in this scrape");
}

#[test]
fn sglang_and_tgi_are_read_by_their_own_names() {
    let s = read(SGLANG, &Series::sglang());
    assert_eq!(s.reading, reading(12, 5, Some(0.28)));
    assert_eq!(s.generation, Some(7_557_572.0));
    let t = read(TGI, &Series::tgi());
    assert_eq!(t.reading, reading(8, 3, None), "TGI publishes no KV usage");
    assert_eq!(t.generation, Some(9041.0), "forward passes of every method");
}

#[test]
fn auto_finds_the_engine_from_its_series() {
    for (text, engine) in [
        (VLLM, "vllm"),
        (VLLM_OLD, "vllm"),
        (SGLANG, "sglang"),
        (TGI, "tgi"),
    ] {
        let found = parse(text).and_then(|p| p.detect()).expect("engine");
        assert_eq!(found.engine, engine);
    }
    let other = "# TYPE http_requests_total counter\nhttp_requests_total 3\n";
    assert_eq!(
        parse(other).and_then(|p| p.detect()),
        Err(ReadError::UnknownEngine)
    );
}

#[test]
fn custom_names_read_any_series_and_only_running_is_required() {
    let text = "# HELP q Queue.\n# TYPE q gauge\nq{shard=\"a\"} 2\nq{shard=\"b\"} 3\n\
                busy 4\nkv 0.5\nout_total 10\n";
    let names = |waiting: Option<&str>, kv: Option<&str>, generation: Option<&str>| {
        Series::of(&EngineFlavor::Custom(EngineNames {
            running: "busy".into(),
            waiting: waiting.map(Into::into),
            kv_usage: kv.map(Into::into),
            generation: generation.map(Into::into),
        }))
        .expect("custom")
    };
    let all = read(text, &names(Some("q"), Some("kv"), Some("out_total")));
    assert_eq!(all.reading, reading(4, 5, Some(0.5)));
    assert_eq!(all.generation, Some(10.0));
    let bare = names(None, None, None);
    let b = read(text, &bare);
    assert_eq!(b.reading, reading(4, 0, None));
    assert_eq!(b.generation, None, "without a counter it never stalls");
    let missing = parse("q 1\n").and_then(|p| p.read(&bare));
    assert_eq!(
        missing,
        Err(ReadError::Missing {
            engine: "custom",
            name: "busy".into()
        })
    );
    assert_eq!(Series::of(&EngineFlavor::Auto), None);
}

#[test]
fn a_flavor_fails_a_scrape_of_another_engine() {
    let e = parse(SGLANG).and_then(|p| p.read(&Series::vllm()));
    assert!(
        matches!(e, Err(ReadError::Missing { engine: "vllm", .. })),
        "{e:?}"
    );
}

#[test]
fn garbage_never_panics_and_odd_values_are_bounded() {
    for text in [
        "",
        "\u{0}\u{1}",
        "<html>502 Bad Gateway</html>",
        "vllm:num_requests_running{",
        "vllm:num_requests_running 1e999999\n",
        "vllm:num_requests_running NaN\n",
        "vllm:num_requests_running 0x10\n",
    ] {
        let _ = parse(text).and_then(|p| p.read(&Series::vllm()));
    }
    let odd = "vllm:num_requests_running -3\nvllm:num_requests_waiting 1e12\n\
               vllm:kv_cache_usage_perc 4.5\n";
    assert_eq!(
        read(odd, &Series::vllm()).reading,
        reading(0, u32::MAX, Some(1.0)),
        "clamped here; the table's packing clamps counts further"
    );
}

#[test]
#[ignore = "measurement, not a check: cargo test --release --lib parse_cost -- --ignored --nocapture"]
fn parse_cost_of_a_large_vllm_scrape() {
    // A vLLM-like scrape: the four series we read plus 12 histograms of 20 buckets for each
    // of 4 models, and some gauges: about the size of a real multi-model server's.
    let mut text = String::from(VLLM);
    for h in 0..12 {
        text += &format!(
            "# HELP vllm:hist_{h}_seconds A histogram.\n# TYPE vllm:hist_{h}_seconds histogram\n"
        );
        for m in 0..4 {
            for b in 0..20 {
                text += &format!(
                    "vllm:hist_{h}_seconds_bucket{{engine=\"0\",le=\"{}.0\",model_name=\"org/model-{m}\"}} {}.0\n",
                    b,
                    b * 7
                );
            }
            text += &format!(
                "vllm:hist_{h}_seconds_sum{{engine=\"0\",model_name=\"org/model-{m}\"}} 12.5\n"
            );
            text += &format!(
                "vllm:hist_{h}_seconds_count{{engine=\"0\",model_name=\"org/model-{m}\"}} 140.0\n"
            );
        }
    }
    let n = 50;
    let start = std::time::Instant::now();
    for _ in 0..n {
        let s = parse(&text)
            .and_then(|p| p.read(&Series::vllm()))
            .expect("reads");
        assert_eq!(s.reading.running, 5);
    }
    let per = start.elapsed() / n;
    println!("{} bytes: {per:?} per parse", text.len());
}
