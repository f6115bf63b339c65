//! How long requests waited in the mock's own queue for a generation slot and its KV:
//! vLLM's `vllm:request_queue_time_seconds` histogram (its buckets, every request the engine
//! admitted, the external load's included, as vLLM counts every client), plus two mock-only
//! counters of the requests that came from a client (`ringlb_mock_client_requests_queued_total`,
//! `ringlb_mock_client_queue_seconds_total`), which tell a benchmark how many of *its* requests
//! found the backend full and for how long, without the phantom streams.
//!
//! Lock-free: a few relaxed atomic adds per admission. Must never block admission.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// vLLM's `request_latency_buckets` (vllm/v1/metrics/loggers.py), which its queue-time
/// histogram uses, in seconds.
pub(crate) const BUCKETS: [f64; 21] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Where an admitted request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Client,
    /// A phantom stream of `--external-load`.
    External,
}

/// The histogram (non-cumulative bucket counts, summed on render) and the client counters.
#[derive(Debug, Default)]
pub(crate) struct QueueTimes {
    buckets: [AtomicU64; BUCKETS.len()],
    /// Above the last bucket (only in `+Inf`).
    over: AtomicU64,
    count: AtomicU64,
    sum_us: AtomicU64,
    client_queued: AtomicU64,
    client_queued_us: AtomicU64,
}

impl QueueTimes {
    /// A request was admitted after `waited`; `queued` if it could not take its slot and KV
    /// at once (a request admitted at once is not counted as queued, however long the
    /// admission itself took).
    pub(crate) fn record(&self, origin: Origin, waited: Duration, queued: bool) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        let secs = waited.as_secs_f64();
        match BUCKETS.iter().position(|&le| secs <= le) {
            Some(i) => self.buckets[i].fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        if queued && origin == Origin::Client {
            self.client_queued.fetch_add(1, Relaxed);
            self.client_queued_us.fetch_add(us, Relaxed);
        }
    }

    /// Client requests that queued, and their total wait.
    pub(crate) fn client_queued(&self) -> (u64, Duration) {
        let us = self.client_queued_us.load(Relaxed);
        (self.client_queued.load(Relaxed), Duration::from_micros(us))
    }

    /// The histogram with `labels` (`{...}` or empty) and the two client counters.
    pub(crate) fn render(&self, out: &mut String, labels: &str) {
        let name = "vllm:request_queue_time_seconds";
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let sep = if inner.is_empty() { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {name} Histogram of time spent in WAITING phase for request.\n\
             # TYPE {name} histogram\n"
        );
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{inner}{sep}le=\"{le:?}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = write!(
            out,
            "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {count}\n{name}_sum{labels} {sum}\n\
             {name}_count{labels} {count}\n"
        );
        let (queued, waited) = self.client_queued();
        for (name, help, value) in [
            (
                "ringlb_mock_client_requests_queued_total",
                "Client requests that found no free slot or KV and queued (mock only).",
                queued.to_string(),
            ),
            (
                "ringlb_mock_client_queue_seconds_total",
                "Total time client requests spent queued (mock only).",
                waited.as_secs_f64().to_string(),
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{labels} {value}\n"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_only_queued_clients_count() {
        let q = QueueTimes::default();
        q.record(Origin::Client, Duration::from_millis(2), false);
        q.record(Origin::Client, Duration::from_millis(400), true);
        q.record(Origin::External, Duration::from_secs(3), true);
        q.record(Origin::Client, Duration::from_secs(9000), true);
        let mut out = String::new();
        q.render(&mut out, "{model_name=\"m\"}");
        let name = "vllm:request_queue_time_seconds";
        assert!(out.contains(&format!("# TYPE {name} histogram\n")));
        assert!(out.contains(&format!("{name}_bucket{{model_name=\"m\",le=\"0.3\"}} 1\n")));
        assert!(out.contains(&format!("{name}_bucket{{model_name=\"m\",le=\"0.5\"}} 2\n")));
        assert!(out.contains(&format!("{name}_bucket{{model_name=\"m\",le=\"5.0\"}} 3\n")));
        assert!(out.contains(&format!(
            "{name}_bucket{{model_name=\"m\",le=\"7680.0\"}} 3\n"
        )));
        assert!(out.contains(&format!(
            "{name}_bucket{{model_name=\"m\",le=\"+Inf\"}} 4\n"
        )));
        assert!(out.contains(&format!("{name}_count{{model_name=\"m\"}} 4\n")));
        assert!(out.contains(&format!("{name}_sum{{model_name=\"m\"}} 9003.402\n")));
        assert!(out.contains("ringlb_mock_client_requests_queued_total{model_name=\"m\"} 2\n"));
        assert!(out.contains("ringlb_mock_client_queue_seconds_total{model_name=\"m\"} 9000.4\n"));
        let mut bare = String::new();
        QueueTimes::default().render(&mut bare, "");
        assert!(bare.contains(&format!("{name}_bucket{{le=\"+Inf\"}} 0\n")));
        assert!(bare.contains(&format!("{name}_count 0\n")));
    }
}
