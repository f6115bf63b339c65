//! Live counters of one mock backend, shared with the demo table, `/metrics` and tests.
//!
//! Updates are lock-free atomics except the TTFT histogram (a short mutex hold per first
//! token). Must never block a connection for longer than one histogram record.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use super::queue_time::QueueTimes;

/// Highest TTFT the histogram resolves, in microseconds (one hour): anything longer is a
/// stuck request, clamped rather than dropped.
const TTFT_MAX_US: u64 = 3_600_000_000;

/// Counters of one backend; read them with [`BackendStats::snapshot`].
#[derive(Debug)]
pub struct BackendStats {
    name: String,
    capacity: usize,
    pub(crate) running: AtomicU64,
    pub(crate) waiting: AtomicU64,
    pub(crate) requests_total: AtomicU64,
    pub(crate) streams_total: AtomicU64,
    pub(crate) aborted_total: AtomicU64,
    pub(crate) tokens_total: AtomicU64,
    /// Tokens of the generations that finished (TGI counts generated tokens only then).
    pub(crate) finished_tokens_total: AtomicU64,
    pub(crate) prompt_tokens_total: AtomicU64,
    /// KV tokens reserved by running generations (only with a KV budget).
    pub(crate) kv_used: AtomicU64,
    pub(crate) connections_active: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    ttft_us: Mutex<Histogram<u64>>,
    /// Queue waits (`vllm:request_queue_time_seconds` and the client queue counters).
    pub(crate) queue_times: QueueTimes,
}

/// A point-in-time copy of [`BackendStats`]; tokens/s is the difference of two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatsSnapshot {
    /// Generations holding a slot now, the external load's included
    /// (`vllm:num_requests_running`).
    pub active: u64,
    /// Requests queued for a slot (or for KV) now (`vllm:num_requests_waiting`).
    pub waiting: u64,
    /// Generation requests received (SSE, JSON and WebSocket messages).
    pub total_requests: u64,
    /// Generations that wrote all their tokens and the end marker.
    pub total_streams: u64,
    /// Generations abandoned because the client went away (queued or mid-stream).
    pub aborted_streams: u64,
    /// Tokens generated: written to clients, or by the phantom external load
    /// (`vllm:generation_tokens_total`).
    pub total_tokens: u64,
    /// Tokens of the generations that finished.
    pub finished_tokens: u64,
    /// Prompt tokens of the generations admitted (`vllm:prompt_tokens_total`).
    pub prompt_tokens: u64,
    /// KV tokens reserved by running generations (0 without a KV budget).
    pub kv_used_tokens: u64,
    /// Open client connections (all modes).
    pub connections_active: u64,
    /// Accepted client connections since start (all modes).
    pub connections_total: u64,
    /// Bytes read from clients in the raw TCP modes.
    pub bytes_in: u64,
    /// Bytes written to clients in the raw TCP modes.
    pub bytes_out: u64,
    /// Number of TTFT samples.
    pub ttft_count: u64,
    /// Median time to first token, microseconds (0 without samples).
    pub ttft_p50_us: u64,
    /// 99th percentile time to first token, microseconds.
    pub ttft_p99_us: u64,
    /// Largest time to first token, microseconds.
    pub ttft_max_us: u64,
    /// Client requests that found no free slot (or KV) and queued
    /// (`ringlb_mock_client_requests_queued_total`).
    pub client_queued: u64,
    /// Their total time queued, microseconds.
    pub client_queued_us: u64,
}

impl BackendStats {
    pub(crate) fn new(name: &str, capacity: usize) -> BackendStats {
        // Constant bounds (1 us .. 1 h, 3 significant digits) that hdrhistogram always accepts.
        let hist = Histogram::new_with_bounds(1, TTFT_MAX_US, 3)
            .expect("constant histogram bounds are valid");
        BackendStats {
            name: name.to_string(),
            capacity,
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            streams_total: AtomicU64::new(0),
            aborted_total: AtomicU64::new(0),
            tokens_total: AtomicU64::new(0),
            finished_tokens_total: AtomicU64::new(0),
            prompt_tokens_total: AtomicU64::new(0),
            kv_used: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            ttft_us: Mutex::new(hist),
            queue_times: QueueTimes::default(),
        }
    }

    /// The backend's name (as in `x-backend`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend's generation slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies every counter; costs a few atomic loads and three histogram quantiles.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (ttft_count, ttft_p50_us, ttft_p99_us, ttft_max_us) = {
            let h = self.ttft_us.lock();
            if h.is_empty() {
                (0, 0, 0, 0)
            } else {
                let p50 = h.value_at_quantile(0.5);
                let p99 = h.value_at_quantile(0.99);
                (h.len(), p50, p99, h.max())
            }
        };
        let (client_queued, client_waited) = self.queue_times.client_queued();
        StatsSnapshot {
            active: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            total_requests: self.requests_total.load(Relaxed),
            total_streams: self.streams_total.load(Relaxed),
            aborted_streams: self.aborted_total.load(Relaxed),
            total_tokens: self.tokens_total.load(Relaxed),
            finished_tokens: self.finished_tokens_total.load(Relaxed),
            prompt_tokens: self.prompt_tokens_total.load(Relaxed),
            kv_used_tokens: self.kv_used.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            ttft_count,
            ttft_p50_us,
            ttft_p99_us,
            ttft_max_us,
            client_queued,
            client_queued_us: u64::try_from(client_waited.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// A copy of the TTFT histogram (microseconds), e.g. to subtract an earlier copy and get
    /// percentiles over the last interval only.
    pub fn ttft_histogram(&self) -> Histogram<u64> {
        self.ttft_us.lock().clone()
    }

    pub(crate) fn record_ttft(&self, ttft: Duration) {
        let us = u64::try_from(ttft.as_micros()).unwrap_or(u64::MAX);
        self.ttft_us
            .lock()
            .saturating_record(us.clamp(1, TTFT_MAX_US));
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// Counts an open connection for as long as it lives.
pub(crate) struct ConnectionGuard<'a>(&'a BackendStats);

impl<'a> ConnectionGuard<'a> {
    pub(crate) fn new(stats: &'a BackendStats) -> Self {
        stats.connections_active.fetch_add(1, Relaxed);
        stats.connections_total.fetch_add(1, Relaxed);
        ConnectionGuard(stats)
    }
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_active.fetch_sub(1, Relaxed);
    }
}
