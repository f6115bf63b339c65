//! `GET /metrics`: Prometheus text exposition (HELP and TYPE lines) with the series names,
//! types and labels of a real engine, so whatever scrapes vLLM, SGLang or TGI (ringlb's
//! engine-metrics scraper and its `least_load` strategy among them) scrapes the mock unchanged.
//! Running, waiting and the generation counter include the phantom external load.
//!
//! Names checked against the engines' own source:
//! - vLLM (`vllm/v1/metrics/loggers.py`, `PrometheusStatLogger`): gauges
//!   `vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`
//!   (0..1; `vllm:gpu_cache_usage_perc` is its older name, kept with the same value), counters
//!   `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, `vllm:request_success_total`,
//!   labels `model_name` and `engine`. `vllm:request_received_total` is the mock's own.
//! - SGLang (`python/sglang/srt/metrics/collector.py`): gauges `sglang:num_running_reqs`,
//!   `sglang:num_queue_reqs`, `sglang:token_usage` (0..1), counters `sglang:prompt_tokens_total`,
//!   `sglang:generation_tokens_total`, label `model_name`.
//! - TGI (`router/src`, `docs/source/reference/metrics.md`): gauges `tgi_queue_size`,
//!   `tgi_batch_current_size`, counters `tgi_request_count`, `tgi_request_success`, no labels.
//!   TGI has no running generated-tokens counter: `tgi_request_generated_tokens` is a
//!   histogram observed when a request ends, so a stall does not show in it (as in TGI).
//!
//! Must never emit a label value that breaks the format (it is escaped) nor take locks beyond
//! the stats snapshot.

use std::fmt::Write;

use super::queue_time::QueueTimes;
use super::stats::StatsSnapshot;

/// The Prometheus text format's content type.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whose series names `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsFlavor {
    #[default]
    Vllm,
    Sglang,
    Tgi,
}

/// One scrape's worth of values.
pub(crate) struct Reading<'a> {
    pub model: &'a str,
    /// vLLM flavor: rendered as `vllm:request_queue_time_seconds` and the client counters.
    pub queue_times: Option<&'a QueueTimes>,
    pub stats: StatsSnapshot,
    /// KV usage 0..1 (slots in use over capacity without a KV budget).
    pub kv_usage: f64,
}

/// Renders every series of `flavor`.
pub(crate) fn render(flavor: MetricsFlavor, r: &Reading<'_>) -> String {
    let s = &r.stats;
    let model = escape(r.model);
    let (labels, series): (String, Vec<(&str, &str, &str, String)>) = match flavor {
        MetricsFlavor::Vllm => (
            format!("{{model_name=\"{model}\",engine=\"0\"}}"),
            vec![
                ("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", s.active.to_string()),
                ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", s.waiting.to_string()),
                ("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", r.kv_usage.to_string()),
                ("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.", r.kv_usage.to_string()),
                ("vllm:request_received_total", "counter", "Generation requests received (mock only).", s.total_requests.to_string()),
                ("vllm:request_success_total", "counter", "Count of successfully processed requests.", s.total_streams.to_string()),
                ("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", s.prompt_tokens.to_string()),
                ("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", s.total_tokens.to_string()),
            ],
        ),
        MetricsFlavor::Sglang => (
            format!("{{model_name=\"{model}\"}}"),
            vec![
                ("sglang:num_running_reqs", "gauge", "The number of running requests.", s.active.to_string()),
                ("sglang:num_queue_reqs", "gauge", "The number of requests in the waiting queue.", s.waiting.to_string()),
                ("sglang:token_usage", "gauge", "The token usage.", r.kv_usage.to_string()),
                ("sglang:prompt_tokens_total", "counter", "Number of prefill tokens processed.", s.prompt_tokens.to_string()),
                ("sglang:generation_tokens_total", "counter", "Number of generation tokens processed.", s.total_tokens.to_string()),
            ],
        ),
        MetricsFlavor::Tgi => (
            String::new(),
            vec![
                ("tgi_queue_size", "gauge", "Current queue size", s.waiting.to_string()),
                ("tgi_batch_current_size", "gauge", "Current batch size", s.active.to_string()),
                ("tgi_request_count", "counter", "Total number of requests", s.total_requests.to_string()),
                ("tgi_request_success", "counter", "Number of successful requests", s.total_streams.to_string()),
            ],
        ),
    };
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in series {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
        );
    }
    if let (MetricsFlavor::Vllm, Some(q)) = (flavor, r.queue_times) {
        q.render(&mut out, &labels);
    }
    if flavor == MetricsFlavor::Tgi {
        // Only the +Inf bucket: enough for a valid histogram and for its sum and count.
        let name = "tgi_request_generated_tokens";
        let (count, sum) = (s.total_streams, s.finished_tokens);
        let _ = write!(
            out,
            "# HELP {name} Generated tokens per request\n# TYPE {name} histogram\n\
             {name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}\n"
        );
    }
    out
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(model: &str) -> Reading<'_> {
        Reading {
            model,
            queue_times: None,
            stats: StatsSnapshot {
                active: 3,
                waiting: 2,
                total_tokens: 40,
                ..StatsSnapshot::default()
            },
            kv_usage: 0.25,
        }
    }

    #[test]
    fn every_series_has_help_type_and_an_escaped_model_label() {
        let text = render(MetricsFlavor::Vllm, &reading("b\"1"));
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 8);
        let labels = "{model_name=\"b\\\"1\",engine=\"0\"} ";
        assert!(samples.iter().all(|l| l.contains(labels)), "{text}");
        assert!(text.contains("# TYPE vllm:num_requests_waiting gauge\n"));
        assert!(text.contains(&format!("vllm:num_requests_running{labels}3\n")));
        assert!(text.contains(&format!("vllm:gpu_cache_usage_perc{labels}0.25\n")));
    }

    #[test]
    fn sglang_and_tgi_use_their_own_names() {
        let text = render(MetricsFlavor::Sglang, &reading("m"));
        assert!(text.contains(
            "# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name=\"m\"} 2\n"
        ));
        assert!(text.contains("sglang:generation_tokens_total{model_name=\"m\"} 40\n"));
        assert!(!text.contains("vllm:"));
        let text = render(MetricsFlavor::Tgi, &reading("m"));
        assert!(text.contains("# TYPE tgi_batch_current_size gauge\ntgi_batch_current_size 3\n"));
        assert!(text.contains("tgi_queue_size 2\n"));
        assert!(text.contains("# TYPE tgi_request_generated_tokens histogram\n"));
        assert!(!text.contains("model_name"));
    }
}
