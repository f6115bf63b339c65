//! A read-only view of a running server for the control plane (admin API, metrics): the
//! shared backend table, each worker's counters, the pool queues and the connection limits.
//! [`Observer`] is a bundle of `Arc` clones, cheap to clone and to hold on another thread.
//!
//! Everything it reads is an atomic or an `ArcSwap` load. It must never take a lock a worker
//! takes, never write anything a worker reads, and never wait on a worker: a scrape can never
//! slow a relayed byte. (The table itself is replaced through [`SharedTable::store`], which
//! the admin side does on its own thread.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::balance::{Registry, SharedTable};

use super::admit::Admission;
use super::queue::QueueShared;
use super::stats::{StatsSnapshot, WorkerStats};

/// Upper bounds of the queue-wait buckets, in microseconds: from 1 ms (a slot freed at once)
/// to 60 s (past any sensible `queue_timeout`); a wait above the last lands in +Inf only.
pub const WAIT_BUCKETS_US: [u64; 12] = [
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000, 60_000_000,
];

/// A lock-free histogram of queue waits for one pool: a worker records with two relaxed adds,
/// the control plane reads without stopping it.
#[derive(Debug, Default)]
pub struct WaitHistogram {
    /// Non-cumulative counts per bucket of [`WAIT_BUCKETS_US`], then one for +Inf.
    buckets: [AtomicU64; WAIT_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl WaitHistogram {
    pub fn record(&self, us: u64) {
        let i = WAIT_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> WaitSnapshot {
        let mut cumulative = [0u64; WAIT_BUCKETS_US.len() + 1];
        let mut running = 0u64;
        for (out, b) in cumulative.iter_mut().zip(&self.buckets) {
            running = running.saturating_add(b.load(Ordering::Relaxed));
            *out = running;
        }
        WaitSnapshot {
            cumulative,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A copy of one pool's queue-wait histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitSnapshot {
    /// Cumulative counts: `cumulative[i]` waits took at most `WAIT_BUCKETS_US[i]`; the last
    /// entry counts every wait (+Inf).
    pub cumulative: [u64; WAIT_BUCKETS_US.len() + 1],
    pub sum_us: u64,
}

impl WaitSnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative[WAIT_BUCKETS_US.len()]
    }
}

/// The listeners that accept right now, by name, with the addresses they are bound to (port
/// 0 resolved). Written at start and by reloads, read by the control plane; never touched by
/// a worker, so a lock is fine.
#[derive(Default)]
pub struct ListenerBook(parking_lot::Mutex<Vec<(String, SocketAddr)>>);

impl ListenerBook {
    pub(super) fn new(listeners: Vec<(String, SocketAddr)>) -> ListenerBook {
        ListenerBook(parking_lot::Mutex::new(listeners))
    }

    pub fn snapshot(&self) -> Vec<(String, SocketAddr)> {
        self.0.lock().clone()
    }

    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.0
            .lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    pub(super) fn add(&self, name: &str, addr: SocketAddr) {
        let mut book = self.0.lock();
        book.retain(|(n, _)| n != name);
        book.push((name.to_string(), addr));
    }

    pub(super) fn remove(&self, name: &str) {
        self.0.lock().retain(|(n, _)| n != name);
    }
}

/// What the control plane may read of a running server; see the module doc.
#[derive(Clone)]
pub struct Observer {
    pub(super) table: Arc<SharedTable>,
    pub(super) registry: Arc<Registry>,
    pub(super) stats: Vec<Arc<WorkerStats>>,
    pub(super) queues: Arc<QueueShared>,
    pub(super) admission: Arc<Admission>,
    pub(super) listeners: Arc<ListenerBook>,
    pub(super) max_connections: u32,
    pub(super) io: Arc<super::IoChoice>,
}

impl Observer {
    /// The I/O driver the workers run on, and why.
    pub fn io(&self) -> &super::IoChoice {
        &self.io
    }

    /// The table every worker picks from (the admin side stores rebuilt ones here).
    pub fn table(&self) -> &Arc<SharedTable> {
        &self.table
    }

    /// Where backend states live across table rebuilds.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Each worker's counters and gauges, by worker id.
    pub fn workers(&self) -> Vec<StatsSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Client connections counted against the limits right now.
    pub fn admitted(&self) -> u32 {
        self.admission.admitted()
    }

    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Listener names and the addresses they are bound to, in the order they were started
    /// (a reload adds and removes listeners).
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.snapshot()
    }

    /// Clients waiting in pool `pool`'s queue (all workers).
    pub fn queue_len(&self, pool: usize) -> u32 {
        self.queues.waiting(pool)
    }

    /// How long clients dispatched from pool `pool`'s queue waited; None for no such pool.
    pub fn queue_wait(&self, pool: usize) -> Option<WaitSnapshot> {
        self.queues.wait.get(pool).map(WaitHistogram::snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_land_in_cumulative_buckets() {
        let h = WaitHistogram::default();
        h.record(1_000);
        h.record(1_001);
        h.record(70_000_000);
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1, "1 ms is within the 1 ms bucket");
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[WAIT_BUCKETS_US.len() - 1], 2);
        assert_eq!(s.count(), 3, "+Inf counts everything");
        assert_eq!(s.sum_us, 70_002_001);
    }
}
