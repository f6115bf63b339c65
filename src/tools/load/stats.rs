//! What a run measures: per-request [`Sample`]s folded into one shared [`Recorder`] (histograms,
//! totals, error breakdown, backend counts), plus lock-free counters for the progress bar.
//! Must never drop a failure: every request ends in exactly one `record_ok` or `record_error`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::error::{ErrorCounts, ErrorKind, RequestError};
use super::histo::Histo;
use super::request_log::RequestLog;

/// Distinct error messages kept for the report: enough to show every different failure of a
/// typical run, few enough that a run failing in a thousand ways prints a readable summary.
pub const DEFAULT_ERROR_SAMPLES: usize = 10;

/// The label counted when `--backend-header` is on but a response lacks the header, so the
/// distribution still sums to the successful requests.
pub const NO_BACKEND: &str = "(none)";

/// What one request observed, filled in as it goes so that a failed or timed-out request still
/// reports the bytes and tokens it received.
#[derive(Debug, Default)]
pub struct Sample {
    /// The request's number in the run (its ticket's), set before it runs: what a
    /// per-request draw (`--max-tokens-dist`) is keyed on.
    pub seq: u64,
    /// The `max_tokens` the request asked for (sse, websocket).
    pub max_tokens: Option<u64>,
    /// When the request began (its intended start in open loop), for the request log.
    pub started: Option<Instant>,
    pub first_byte: Option<Instant>,
    pub first_token: Option<Instant>,
    /// When the latest token arrived.
    pub last_token: Option<Instant>,
    /// Inter-token latencies, microseconds: the gap before each read that carried tokens,
    /// after the first (tokens that arrive in one read are one gap, as in vLLM's
    /// benchmark_serving, which times chunks).
    pub gaps_us: Vec<u32>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub tokens: u64,
    pub backend: Option<String>,
}

impl Sample {
    pub fn mark_first_byte(&mut self) {
        self.first_byte.get_or_insert_with(Instant::now);
    }

    pub fn add_tokens(&mut self, n: u64) {
        if n > 0 {
            self.add_tokens_at(n, Instant::now());
        }
    }

    /// [`add_tokens`](Self::add_tokens) with the arrival time given (tests).
    pub fn add_tokens_at(&mut self, n: u64, now: Instant) {
        if n == 0 {
            return;
        }
        self.first_token.get_or_insert(now);
        if let Some(last) = self.last_token {
            let gap = now.saturating_duration_since(last).as_micros();
            self.gaps_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
        }
        self.last_token = Some(now);
        self.tokens += n;
    }

    /// Time per output token after the first: (last - first) / (tokens - 1); a client's
    /// decode rate is its inverse. None for a stream of fewer than two tokens.
    pub fn tpot(&self) -> Option<Duration> {
        let (first, last) = (self.first_token?, self.last_token?);
        let steps = u32::try_from(self.tokens.checked_sub(1)?).ok()?;
        (steps > 0).then(|| last.saturating_duration_since(first) / steps)
    }
}

/// Everything the report is built from.
pub struct Recorder {
    pub connect: Histo,
    pub ttfb: Histo,
    pub ttft: Histo,
    /// Gaps between token reads of successful streams (see [`Sample::gaps_us`]).
    pub itl: Histo,
    /// Time per output token of each successful stream of two tokens or more.
    pub tpot: Histo,
    pub request: Histo,
    pub queue: Histo,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Distinct "kind: detail" messages and how often each occurred.
    pub error_samples: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub tokens: u64,
    pub backends: BTreeMap<String, u64>,
    pub connections_opened: u64,
    pub closed_early: u64,
}

/// The recorder behind a lock (one short critical section per request) and progress counters.
pub struct Stats {
    rec: Mutex<Recorder>,
    count_backends: bool,
    request_log: Option<RequestLog>,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub tokens: AtomicU64,
    cancelled: AtomicU64,
}

impl Stats {
    pub fn new(count_backends: bool) -> Result<Self, hdrhistogram::CreationError> {
        let rec = Recorder {
            connect: Histo::new()?,
            ttfb: Histo::new()?,
            ttft: Histo::new()?,
            itl: Histo::new()?,
            tpot: Histo::new()?,
            request: Histo::new()?,
            queue: Histo::new()?,
            ok: 0,
            errors: ErrorCounts::default(),
            error_samples: BTreeMap::new(),
            bytes_in: 0,
            bytes_out: 0,
            tokens: 0,
            backends: BTreeMap::new(),
            connections_opened: 0,
            closed_early: 0,
        };
        Ok(Stats {
            rec: Mutex::new(rec),
            count_backends,
            request_log: None,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        })
    }

    /// Writes a line per finished request to `log` from now on (`--request-log`).
    pub fn log_requests_to(&mut self, log: RequestLog) {
        self.request_log = Some(log);
    }

    /// Flushes the request log, if there is one.
    pub fn finish_request_log(&self) -> Result<(), super::error::LoadError> {
        self.request_log.as_ref().map_or(Ok(()), RequestLog::finish)
    }

    /// A connection was established after `took`.
    pub fn record_connect(&self, took: Duration) {
        let mut rec = self.rec.lock();
        rec.connect.record(took);
        rec.connections_opened += 1;
    }

    /// Open loop: the request waited `waited` between its intended start and being sent.
    pub fn record_queue(&self, waited: Duration) {
        self.rec.lock().queue.record(waited);
    }

    /// A request measured from `start` (intended start in open loop) finished well at `end`.
    pub fn record_ok(&self, start: Instant, end: Instant, sample: Sample) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.tokens.fetch_add(sample.tokens, Ordering::Relaxed);
        if let Some(log) = &self.request_log {
            log.record(&sample, end, None);
        }
        let mut rec = self.rec.lock();
        rec.ok += 1;
        rec.request.record(end.saturating_duration_since(start));
        if let Some(at) = sample.first_byte {
            rec.ttfb.record(at.saturating_duration_since(start));
        }
        if let Some(at) = sample.first_token {
            rec.ttft.record(at.saturating_duration_since(start));
        }
        for &gap in &sample.gaps_us {
            rec.itl.record(Duration::from_micros(u64::from(gap)));
        }
        if let Some(tpot) = sample.tpot() {
            rec.tpot.record(tpot);
        }
        add_traffic(&mut rec, &sample);
        if self.count_backends {
            let name = sample.backend.unwrap_or_else(|| NO_BACKEND.to_string());
            *rec.backends.entry(name).or_insert(0) += 1;
        }
    }

    /// A request failed; what it received before failing still counts as traffic.
    pub fn record_error(&self, err: &RequestError, sample: Sample) {
        self.record_failure(err, sample, false);
    }

    /// Idle mode: the peer closed a held connection before the end of the run.
    pub fn record_closed_early(&self, detail: String, sample: Sample) {
        let err = RequestError::new(ErrorKind::Closed, detail);
        self.record_failure(&err, sample, true);
    }

    fn record_failure(&self, err: &RequestError, sample: Sample, early_close: bool) {
        tracing::debug!(%err, "request failed");
        self.done.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.tokens.fetch_add(sample.tokens, Ordering::Relaxed);
        if let Some(log) = &self.request_log {
            log.record(&sample, Instant::now(), Some(err));
        }
        let mut rec = self.rec.lock();
        rec.errors.add(err.kind);
        if early_close {
            rec.closed_early += 1;
        }
        let message = err.to_string();
        let known = rec.error_samples.len();
        match rec.error_samples.get_mut(&message) {
            Some(count) => *count += 1,
            None if known < DEFAULT_ERROR_SAMPLES => {
                rec.error_samples.insert(message, 1);
            }
            None => {}
        }
        add_traffic(&mut rec, &sample);
    }

    /// A request in flight was abandoned because the run was told to stop.
    pub fn record_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn with_recorder<T>(&self, f: impl FnOnce(&Recorder) -> T) -> T {
        f(&self.rec.lock())
    }
}

fn add_traffic(rec: &mut Recorder, sample: &Sample) {
    rec.bytes_in += sample.bytes_in;
    rec.bytes_out += sample.bytes_out;
    rec.tokens += sample.tokens;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_between_token_reads_and_tpot_spans_the_stream() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = Sample::default();
        assert_eq!(s.tpot(), None);
        s.add_tokens_at(1, ms(100));
        assert_eq!(s.tpot(), None, "one token has no decode time");
        s.add_tokens_at(0, ms(105));
        s.add_tokens_at(1, ms(120));
        s.add_tokens_at(2, ms(150));
        assert_eq!(s.first_token, Some(ms(100)));
        assert_eq!(s.gaps_us, vec![20_000, 30_000]);
        assert_eq!(s.tokens, 4);
        assert_eq!(s.tpot(), Some(Duration::from_millis(50) / 3));
    }

    #[test]
    fn only_successful_streams_feed_itl_and_tpot() {
        let stats = Stats::new(false).unwrap();
        let t0 = Instant::now();
        let mut ok = Sample::default();
        for i in 0..3 {
            ok.add_tokens_at(1, t0 + Duration::from_millis(10 * i));
        }
        stats.record_ok(t0, t0 + Duration::from_millis(30), ok);
        let mut failed = Sample::default();
        failed.add_tokens_at(1, t0);
        failed.add_tokens_at(1, t0 + Duration::from_secs(5));
        stats.record_error(&RequestError::closed("gone"), failed);
        stats.with_recorder(|rec| {
            let itl = rec.itl.summary();
            assert_eq!(itl.count, 2);
            assert!((9_990..=10_010).contains(&itl.max), "{itl:?}");
            assert_eq!(rec.tpot.summary().count, 1);
            assert_eq!(rec.tokens, 5);
        });
    }
}
