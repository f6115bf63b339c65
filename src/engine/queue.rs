//! Waiting room for clients whose pool is full: when every eligible backend is at
//! `max_connections`, a new client waits (up to the pool's `queue_size`, for at most
//! `queue_timeout`) and is dispatched the moment a stream of that pool ends.
//!
//! The queue length is shared by all workers (one atomic per pool, so `queue_size` holds for
//! the pool as a whole); each worker keeps its own clients in FIFO order. A worker that ends a
//! stream of a pool with clients waiting on other workers wakes them. Must never hold a client
//! past its timeout, nor count one twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use super::observe::WaitHistogram;
use super::uring::Waker;

/// Shared by all workers of a server.
pub struct QueueShared {
    /// Clients waiting, per pool index, across all workers.
    pub waiting: Vec<AtomicU32>,
    /// Time spent waiting by clients that were dispatched, in microseconds. Recorded only on
    /// the overload path (a dispatch from the queue), never per ordinary connection.
    pub wait_us: Mutex<Histogram<u64>>,
    /// The same waits per pool, lock-free, for the admin API's metrics.
    pub wait: Vec<WaitHistogram>,
    /// Every worker's waker, set once all workers are up.
    pub wakers: OnceLock<Vec<Waker>>,
}

impl QueueShared {
    pub fn new(pools: usize) -> Arc<QueueShared> {
        Arc::new(QueueShared {
            waiting: (0..pools).map(|_| AtomicU32::new(0)).collect(),
            wait_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid"),
            ),
            wait: (0..pools).map(|_| WaitHistogram::default()).collect(),
            wakers: OnceLock::new(),
        })
    }

    /// Takes a place in `pool`'s queue if fewer than `limit` clients wait.
    pub fn try_join(&self, pool: usize, limit: u32) -> bool {
        let Some(w) = self.waiting.get(pool) else {
            return false;
        };
        w.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
    }

    pub fn leave(&self, pool: usize) {
        if let Some(w) = self.waiting.get(pool) {
            let _ = w.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    pub fn waiting(&self, pool: usize) -> u32 {
        self.waiting
            .get(pool)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    pub fn record_wait(&self, pool: usize, us: u64) {
        let _ = self.wait_us.lock().record(us.max(1));
        if let Some(h) = self.wait.get(pool) {
            h.record(us);
        }
    }

    /// Wakes every worker but `me` (they re-try their queues on waking).
    pub fn wake_others(&self, me: usize) {
        if let Some(wakers) = self.wakers.get() {
            for (i, w) in wakers.iter().enumerate() {
                if i != me {
                    w.wake();
                }
            }
        }
    }
}

/// One worker's waiting clients, per pool: (slab key, generation), oldest first. Entries of
/// clients that timed out are skipped when reached.
#[derive(Default)]
pub struct LocalQueues {
    pools: Vec<VecDeque<(usize, u32)>>,
}

impl LocalQueues {
    pub fn push(&mut self, pool: usize, key: usize, gen: u32) {
        if self.pools.len() <= pool {
            self.pools.resize_with(pool + 1, VecDeque::new);
        }
        self.pools[pool].push_back((key, gen));
    }

    pub fn front(&self, pool: usize) -> Option<(usize, u32)> {
        self.pools.get(pool).and_then(|q| q.front().copied())
    }

    pub fn pop(&mut self, pool: usize) {
        if let Some(q) = self.pools.get_mut(pool) {
            q.pop_front();
        }
    }

    /// Number of pools this worker has ever queued for (indexes `0..pools()`).
    pub fn pools(&self) -> usize {
        self.pools.len()
    }

    pub fn len(&self, pool: usize) -> usize {
        self.pools.get(pool).map_or(0, |q| q.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_limit_holds_across_joins_and_leaves() {
        let q = QueueShared::new(2);
        assert!(q.try_join(0, 2));
        assert!(q.try_join(0, 2));
        assert!(!q.try_join(0, 2), "third client refused");
        assert!(q.try_join(1, 1), "other pool unaffected");
        q.leave(0);
        assert!(q.try_join(0, 2));
        q.leave(0);
        q.leave(0);
        q.leave(0);
        assert_eq!(q.waiting(0), 0, "never below zero");
        assert!(!q.try_join(0, 0), "queue_size 0 means no queue");
        assert!(!q.try_join(7, 5), "unknown pool");
    }

    #[test]
    fn local_queues_keep_fifo_order_per_pool() {
        let mut l = LocalQueues::default();
        l.push(1, 10, 1);
        l.push(1, 11, 1);
        l.push(0, 12, 1);
        assert_eq!(l.pools(), 2);
        assert_eq!((l.len(0), l.len(1)), (1, 2));
        assert_eq!(l.front(1), Some((10, 1)));
        l.pop(1);
        assert_eq!(l.front(1), Some((11, 1)));
        assert_eq!(l.len(1), 1);
    }
}
