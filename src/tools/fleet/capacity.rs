//! The simulated GPU: a fixed number of generation slots handed out in FIFO order, a prefill
//! delay before the first token and a decode pace after it.
//!
//! Waiting for a slot counts in `waiting`, holding one in `running`; both gauges are kept by
//! guards so a cancelled or failed request can never leave them off by one. Must never hand out
//! more slots than the capacity, nor keep a slot for a client that is gone.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::generate::Generation;
use super::stats::BackendStats;

/// Generation slots plus the timing model shared by every connection of one backend.
pub(crate) struct Gpu {
    slots: Arc<Semaphore>,
    stats: Arc<BackendStats>,
    ttft: Duration,
    interval: Duration,
}

/// A held generation slot; counts in `running` until dropped.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    stats: Arc<BackendStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.running.fetch_sub(1, Relaxed);
    }
}

/// Counts in `waiting` while a request is queued, whatever way the wait ends.
struct Waiting<'a>(&'a BackendStats);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Relaxed);
    }
}

impl Gpu {
    pub(crate) fn new(
        stats: Arc<BackendStats>,
        capacity: usize,
        ttft: Duration,
        interval: Duration,
    ) -> Gpu {
        Gpu {
            slots: Arc::new(Semaphore::new(capacity)),
            stats,
            ttft,
            interval,
        }
    }

    /// Queues a generation of `max_tokens` tokens received at `received` and waits for a slot.
    /// Returns `None` (counted as aborted) if `client_gone` completes first: a client that
    /// hung up while queued must not consume a slot later.
    pub(crate) async fn admit(
        &self,
        received: Instant,
        max_tokens: u64,
        client_gone: impl Future<Output = ()>,
    ) -> Option<Generation> {
        let id = self.stats.requests_total.fetch_add(1, Relaxed) + 1;
        let permit = {
            self.stats.waiting.fetch_add(1, Relaxed);
            let _waiting = Waiting(&self.stats);
            tokio::select! {
                biased;
                permit = self.slots.clone().acquire_owned() => permit.ok(),
                () = client_gone => None,
            }
        };
        let Some(permit) = permit else {
            self.stats.aborted_total.fetch_add(1, Relaxed);
            return None;
        };
        self.stats.running.fetch_add(1, Relaxed);
        let slot = Slot {
            _permit: permit,
            stats: self.stats.clone(),
        };
        let first_at = Instant::now() + self.ttft;
        Some(Generation::new(
            id,
            slot,
            self.stats.clone(),
            received,
            first_at,
            self.interval,
            max_tokens,
        ))
    }
}
