//! What happened to the streams of one backend, for metrics: bytes each way, streams ended by
//! close reason, connect failures by kind, connect-time and first-byte histograms, and the
//! engine-metrics scrapes of it. Kept in
//! the backend's shared state (so counts survive reloads, like the active count) on cache
//! lines of their own, written with relaxed atomic adds by whichever worker saw the event.
//! Must never be read on the pick path, and never take a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a stream (or a client that never got a stream) ended. The names are the access log's
/// and the metrics' `reason` label; keep them stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CloseReason {
    /// Both directions ended; the client sent FIN first.
    ClientFin,
    /// Both directions ended; the backend sent FIN first.
    BackendFin,
    ClientReset,
    BackendReset,
    IdleTimeout,
    HalfCloseTimeout,
    MaxAge,
    /// The backend was removed or drained and its drain timeout passed.
    Drained,
    /// ringlb stopped (or its shutdown timeout passed) with the stream still open.
    Shutdown,
    /// An active check took the backend down with `on_down = "reset"`.
    HealthDown,
    /// No backend could be connected within the pool's retries.
    ConnectFailed,
    /// The backend sent nothing within the pool's `first_byte_timeout` of the request.
    FirstByteTimeout,
    /// The client sent too little to route within its listener's `peek_timeout`.
    PeekTimeout,
    /// The peek refused the client: `peek_max` passed undecided, or a bad PROXY header.
    PeekRejected,
    QueueTimeout,
    QueueFull,
    /// Every backend of the pool was down or drained.
    NoBackend,
    /// A queued client hung up before a backend had room.
    QueueAbandoned,
    /// A local failure (out of memory for a slow peer's bytes, no descriptor left).
    #[default]
    Error,
}

impl CloseReason {
    pub const ALL: [CloseReason; 19] = [
        CloseReason::ClientFin,
        CloseReason::BackendFin,
        CloseReason::ClientReset,
        CloseReason::BackendReset,
        CloseReason::IdleTimeout,
        CloseReason::HalfCloseTimeout,
        CloseReason::MaxAge,
        CloseReason::Drained,
        CloseReason::Shutdown,
        CloseReason::HealthDown,
        CloseReason::ConnectFailed,
        CloseReason::FirstByteTimeout,
        CloseReason::PeekTimeout,
        CloseReason::PeekRejected,
        CloseReason::QueueTimeout,
        CloseReason::QueueFull,
        CloseReason::NoBackend,
        CloseReason::QueueAbandoned,
        CloseReason::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CloseReason::ClientFin => "client_fin",
            CloseReason::BackendFin => "backend_fin",
            CloseReason::ClientReset => "client_reset",
            CloseReason::BackendReset => "backend_reset",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::HalfCloseTimeout => "half_close_timeout",
            CloseReason::MaxAge => "max_age",
            CloseReason::Drained => "drained",
            CloseReason::Shutdown => "shutdown",
            CloseReason::HealthDown => "health_down",
            CloseReason::ConnectFailed => "connect_failed",
            CloseReason::FirstByteTimeout => "first_byte_timeout",
            CloseReason::PeekTimeout => "peek_timeout",
            CloseReason::PeekRejected => "peek_rejected",
            CloseReason::QueueTimeout => "queue_timeout",
            CloseReason::QueueFull => "queue_full",
            CloseReason::NoBackend => "no_backend",
            CloseReason::QueueAbandoned => "queue_abandoned",
            CloseReason::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connect to a backend failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ConnectFailure {
    Refused,
    Timeout,
    /// No route, network or host unreachable.
    Unreachable,
    /// Accepted, then reset before the connect's completion was seen.
    Reset,
    #[default]
    Other,
}

impl ConnectFailure {
    pub const ALL: [ConnectFailure; 5] = [
        ConnectFailure::Refused,
        ConnectFailure::Timeout,
        ConnectFailure::Unreachable,
        ConnectFailure::Reset,
        ConnectFailure::Other,
    ];

    /// The kind of a failed connect's errno (positive).
    pub fn from_errno(errno: i32) -> ConnectFailure {
        match errno {
            libc::ECONNREFUSED => ConnectFailure::Refused,
            libc::ETIMEDOUT | libc::ECANCELED => ConnectFailure::Timeout,
            libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
                ConnectFailure::Unreachable
            }
            libc::ECONNRESET => ConnectFailure::Reset,
            _ => ConnectFailure::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "refused",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::Reset => "reset",
            ConnectFailure::Other => "other",
        }
    }
}

/// Upper bounds of the latency histogram buckets, in microseconds (then +Inf).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket histogram that any worker can record into with one atomic add.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0u64; LATENCY_BUCKETS_US.len() + 1];
        let mut total = 0;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            total += b.load(Ordering::Relaxed);
            *c = total;
        }
        HistogramSnapshot {
            cumulative,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// Cumulative counts: `cumulative[i]` samples took at most `LATENCY_BUCKETS_US[i]`; the last
/// entry is the total count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    pub cumulative: [u64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative[LATENCY_BUCKETS_US.len()]
    }
}

#[derive(Debug, Default)]
pub(crate) struct BackendCounters {
    to_backend: AtomicU64,
    from_backend: AtomicU64,
    streams: [AtomicU64; CloseReason::ALL.len()],
    connect_failures: [AtomicU64; ConnectFailure::ALL.len()],
    pub(crate) connect_time: LatencyHistogram,
    pub(crate) first_byte: LatencyHistogram,
    /// Engine-metrics scrapes that gave a reading, and those that failed.
    engine_scrapes_ok: AtomicU64,
    engine_scrapes_error: AtomicU64,
}

impl BackendCounters {
    #[inline]
    pub(crate) fn add_bytes(&self, to_backend: bool, n: u64) {
        let c = if to_backend {
            &self.to_backend
        } else {
            &self.from_backend
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.streams[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connect_failed(&self, kind: ConnectFailure) {
        self.connect_failures[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One engine-metrics scrape of the backend, by the control plane's scraper.
    pub(crate) fn engine_scraped(&self, ok: bool) {
        let c = if ok {
            &self.engine_scrapes_ok
        } else {
            &self.engine_scrapes_error
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountersSnapshot {
            bytes_to_backend: r(&self.to_backend),
            bytes_from_backend: r(&self.from_backend),
            streams: CloseReason::ALL.map(|c| (c, r(&self.streams[c.index()]))),
            connect_failures: ConnectFailure::ALL
                .map(|k| (k, r(&self.connect_failures[k as usize]))),
            connect_time: self.connect_time.snapshot(),
            first_byte: self.first_byte.snapshot(),
            engine_scrapes_ok: r(&self.engine_scrapes_ok),
            engine_scrapes_error: r(&self.engine_scrapes_error),
        }
    }
}

/// The counters of one backend at snapshot time.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CountersSnapshot {
    pub bytes_to_backend: u64,
    pub bytes_from_backend: u64,
    /// Streams that ended, by reason (every reason, zeros included).
    pub streams: [(CloseReason, u64); CloseReason::ALL.len()],
    pub connect_failures: [(ConnectFailure, u64); ConnectFailure::ALL.len()],
    pub connect_time: HistogramSnapshot,
    pub first_byte: HistogramSnapshot,
    /// Engine-metrics scrapes that gave a reading / that failed (0 when not scraped).
    pub engine_scrapes_ok: u64,
    pub engine_scrapes_error: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_slot() {
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
        for (i, k) in ConnectFailure::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.name());
        }
    }

    #[test]
    fn counts_and_histograms_add_up() {
        let c = BackendCounters::default();
        c.add_bytes(true, 10);
        c.add_bytes(false, 5);
        c.closed(CloseReason::ClientFin);
        c.closed(CloseReason::ClientFin);
        c.closed(CloseReason::BackendReset);
        c.connect_failed(ConnectFailure::from_errno(libc::ECONNREFUSED));
        c.connect_time.record(Duration::from_micros(100));
        c.connect_time.record(Duration::from_micros(101));
        c.connect_time.record(Duration::from_secs(60));
        let s = c.snapshot();
        assert_eq!((s.bytes_to_backend, s.bytes_from_backend), (10, 5));
        assert_eq!(s.streams[0], (CloseReason::ClientFin, 2));
        assert_eq!(s.streams[3], (CloseReason::BackendReset, 1));
        assert_eq!(s.connect_failures[0], (ConnectFailure::Refused, 1));
        let h = s.connect_time;
        assert_eq!(h.cumulative[0], 1, "100 us is in the first bucket (le)");
        assert_eq!(h.cumulative[1], 2);
        assert_eq!(h.cumulative[LATENCY_BUCKETS_US.len() - 1], 2);
        assert_eq!(h.count(), 3, "60 s only in +Inf");
        assert_eq!(h.sum_us, 100 + 101 + 60_000_000);
    }
}
