//! `GET /metrics`: Prometheus text exposition with the series names vLLM uses, so whatever
//! scrapes a real vLLM (or ringlb's load-aware strategies) can scrape the mock unchanged.
//!
//! Must never emit a label value that breaks the format (it is escaped) nor take locks beyond
//! the stats snapshot.

use std::fmt::Write;

use super::stats::BackendStats;

/// The Prometheus text format's content type.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every series with a `backend="NAME"` label.
pub(crate) fn render(stats: &BackendStats) -> String {
    let s = stats.snapshot();
    let label = escape(stats.name());
    // Like vLLM's gpu_cache_usage_perc, as a fraction of slots rather than of KV blocks.
    let usage = s.active as f64 / stats.capacity().max(1) as f64;
    let series: [(&str, &str, &str, String); 6] = [
        (
            "vllm:num_requests_running",
            "gauge",
            "Number of requests currently running on GPU.",
            s.active.to_string(),
        ),
        (
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            s.waiting.to_string(),
        ),
        (
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU usage: fraction of generation slots in use.",
            usage.to_string(),
        ),
        (
            "vllm:request_received_total",
            "counter",
            "Generation requests received.",
            s.total_requests.to_string(),
        ),
        (
            "vllm:request_success_total",
            "counter",
            "Generation requests that finished.",
            s.total_streams.to_string(),
        ),
        (
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            s.total_tokens.to_string(),
        ),
    ];
    let mut out = String::with_capacity(1024);
    for (name, kind, help, value) in series {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{backend=\"{label}\"}} {value}\n"
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

    #[test]
    fn every_series_has_help_type_and_labelled_sample() {
        let stats = BackendStats::new("b\"1", 4);
        let text = render(&stats);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 6);
        assert!(samples.iter().all(|l| l.contains("{backend=\"b\\\"1\"} ")));
        assert!(text.contains("# TYPE vllm:num_requests_waiting gauge\n"));
        assert!(text.contains("vllm:num_requests_running{backend=\"b\\\"1\"} 0\n"));
    }
}
