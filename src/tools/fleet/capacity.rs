//! The simulated GPU: a fixed number of generation slots and, optionally, a KV-cache budget,
//! handed out in FIFO order; a prefill delay before the first token and a decode pace after it.
//!
//! A request runs once it holds a slot *and* its KV: with a budget (`kv_tokens`) it reserves
//! its prompt plus every token it may generate at admission, the way TGI's token budget admits
//! and vLLM's scheduler would if it never preempted. Reserving up front means a running stream
//! never has to be evicted halfway (the mock has no recompute to model), and the queue and the
//! usage it reports are exact: a request that does not fit waits, even with a slot free.
//!
//! Waiting (for a slot or for KV) counts in `waiting`, holding both in `running`; both gauges
//! are kept by guards so a cancelled or failed request can never leave them off by one. Must
//! never hand out more slots or KV than it has, nor keep either for a client that is gone.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::generate::{GenRequest, Generation, Need, Schedule};
use super::queue_time::Origin;
use super::stall::StallSwitch;
use super::stats::BackendStats;
use crate::tools::lengths::TokenDist;

/// What a [`Gpu`] is built from (validated options, with the slowdown applied).
pub(crate) struct GpuSpec {
    pub capacity: usize,
    pub ttft: Duration,
    pub interval: Duration,
    pub kv_tokens: Option<u32>,
    pub lengths: TokenDist,
    pub prompt_tokens: u64,
}

/// Generation slots, KV and the timing model shared by every connection of one backend.
pub(crate) struct Gpu {
    slots: Arc<Semaphore>,
    kv: Option<(Arc<Semaphore>, u32)>,
    stats: Arc<BackendStats>,
    stall: Arc<StallSwitch>,
    ttft: Duration,
    interval: Duration,
    lengths: TokenDist,
    prompt_tokens: u64,
}

/// A held generation slot and its KV; counts in `running` until dropped.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    _kv: Option<OwnedSemaphorePermit>,
    kv_tokens: u64,
    stats: Arc<BackendStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.running.fetch_sub(1, Relaxed);
        self.stats.kv_used.fetch_sub(self.kv_tokens, Relaxed);
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
    pub(crate) fn new(stats: Arc<BackendStats>, stall: Arc<StallSwitch>, spec: GpuSpec) -> Gpu {
        Gpu {
            slots: Arc::new(Semaphore::new(spec.capacity)),
            kv: spec
                .kv_tokens
                .map(|t| (Arc::new(Semaphore::new(t as usize)), t)),
            stats,
            stall,
            ttft: spec.ttft,
            interval: spec.interval,
            lengths: spec.lengths,
            prompt_tokens: spec.prompt_tokens,
        }
    }

    /// Fraction of the KV budget reserved now; without a budget, of the slots in use.
    pub(crate) fn kv_usage(&self) -> f64 {
        match self.kv {
            Some((_, budget)) => self.stats.kv_used.load(Relaxed) as f64 / f64::from(budget),
            None => self.stats.running.load(Relaxed) as f64 / self.stats.capacity().max(1) as f64,
        }
    }

    /// What `req` needs: its own `max_tokens`, else a draw from the length distribution cut
    /// to what the KV budget can hold. The error (for the client) is a request that could
    /// never fit the budget, even alone.
    pub(crate) fn need(&self, req: &GenRequest) -> Result<Need, String> {
        let prompt = req.prompt_tokens().unwrap_or(self.prompt_tokens);
        let need = Need {
            prompt,
            max_tokens: match req.max_tokens {
                Some(n) => n,
                None => self.sampled_length(prompt),
            },
        };
        match self.kv {
            Some((_, budget)) if need.kv() > u64::from(budget) => Err(format!(
                "request needs {} KV tokens (prompt {} + max_tokens {}), the KV budget is {budget}",
                need.kv(),
                need.prompt,
                need.max_tokens
            )),
            _ => Ok(need),
        }
    }

    /// A request from nobody (the external load): default prompt, sampled length.
    pub(crate) fn phantom_need(&self) -> Need {
        Need {
            prompt: self.prompt_tokens,
            max_tokens: self.sampled_length(self.prompt_tokens),
        }
    }

    fn sampled_length(&self, prompt: u64) -> u64 {
        let n = self.lengths.sample(&mut rand::thread_rng());
        match self.kv {
            Some((_, budget)) => n.min(u64::from(budget).saturating_sub(prompt).max(1)),
            None => n,
        }
    }

    /// Queues a generation received at `received` and waits for a slot and its KV (the wait is
    /// recorded in the queue-time figures, by `origin`). Returns
    /// `None` (counted as aborted) if `client_gone` completes first: a client that hung up
    /// while queued must not consume a slot later. `need` must come from [`Gpu::need`] or
    /// [`Gpu::phantom_need`] (it fits the budget).
    pub(crate) async fn admit(
        &self,
        received: Instant,
        need: Need,
        origin: Origin,
        client_gone: impl Future<Output = ()>,
    ) -> Option<Generation> {
        let id = self.stats.requests_total.fetch_add(1, Relaxed) + 1;
        let kv_tokens = self.kv.as_ref().map_or(0, |_| need.kv());
        let acquire = async {
            // Slot first, then KV: a request that holds a slot but not its KV is still
            // waiting, and the semaphores' FIFO order keeps the queue first come first served.
            let slot = self.slots.clone().acquire_owned().await.ok()?;
            let kv = match &self.kv {
                Some((kv, _)) => {
                    let n = u32::try_from(kv_tokens).ok()?;
                    Some(kv.clone().acquire_many_owned(n).await.ok()?)
                }
                None => None,
            };
            Some((slot, kv))
        };
        let queued_at = Instant::now();
        let (permits, queued) = {
            self.stats.waiting.fetch_add(1, Relaxed);
            let _waiting = Waiting(&self.stats);
            let mut acquire = pin!(acquire);
            // One poll tells a request that got its slot and KV at once from one that queued,
            // exactly, whatever the clock says.
            match poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await {
                Poll::Ready(permits) => (permits, false),
                Poll::Pending => {
                    let permits = tokio::select! {
                        biased;
                        permits = acquire => permits,
                        () = client_gone => None,
                    };
                    (permits, true)
                }
            }
        };
        let Some((permit, kv)) = permits else {
            self.stats.aborted_total.fetch_add(1, Relaxed);
            return None;
        };
        let waited = queued_at.elapsed();
        self.stats.queue_times.record(origin, waited, queued);
        self.stats.running.fetch_add(1, Relaxed);
        self.stats.kv_used.fetch_add(kv_tokens, Relaxed);
        BackendStats::add(&self.stats.prompt_tokens_total, need.prompt);
        let slot = Slot {
            _permit: permit,
            _kv: kv,
            kv_tokens,
            stats: self.stats.clone(),
        };
        let schedule = Schedule {
            id,
            received,
            first_at: Instant::now() + self.ttft,
            interval: self.interval,
            total: need.max_tokens,
        };
        Some(Generation::new(
            schedule,
            slot,
            self.stats.clone(),
            self.stall.clone(),
        ))
    }
}
