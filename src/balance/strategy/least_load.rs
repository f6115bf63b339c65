//! Least load: the backend with the lowest blended load per unit of weight, from what we know
//! exactly (our own streams on it) and what only its inference engine knows (requests from
//! clients that do not pass through this balancer, its queue, its KV cache), as its scraped
//! `/metrics` last said (`[pool.engine_metrics]`, published in `EngineLoad`).
//!
//! ```text
//! score = (ours + external + queue_weight * waiting) * (1 + kv_weight * kv_usage^2) / weight
//! external = max(0, running - ours_busy_at_scrape)
//! ```
//!
//! - `ours` is our live count (exact, this instant), as `count` says: every stream 1, or an
//!   idle one `idle_weight` under `count = "generating"`. It moves with every pick, so a
//!   burst between two scrapes spreads instead of piling onto the backend that looked
//!   emptiest at the last scrape.
//! - `external` is the engine's running requests that are not ours. Our busy streams are
//!   subtracted as they were when the scrape was taken, not as they are now: subtracting the
//!   current count would cancel every stream added since the scrape against a `running`
//!   that does not include it yet, and the backend's score would not rise until the next
//!   scrape (the issue's `running - ours` form, taken literally, piles a burst onto one
//!   backend for up to a scrape interval).
//! - `waiting` weighs `queue_weight` (default 4) running requests: a queue means the engine
//!   is saturated, and a new stream sent there waits behind every queued one before its first
//!   token, while one more running request only slows each decode step a little (decode is
//!   memory-bound, batch cost grows far slower than the batch). Our own queued streams are in
//!   `waiting` as well as in `ours`; counting them twice is the point: they are load that
//!   is not being served.
//! - `kv_usage` multiplies (default `kv_weight` 1: x1.25 at 50%, x1.81 at 90%): a nearly full
//!   KV cache means the next long request may preempt running ones (vLLM recomputes or swaps
//!   them), a cost the counts do not show; squared, so a half-full cache barely matters.
//!   At `kv_full` (default 0.98) or `waiting_full` (off by default) the backend counts as
//!   full, like `max_connections`: the pick spills to the next tier or queues in ringlb.
//! - A backend without a fresh reading scores `ours / weight`: exactly `least_connections`,
//!   the same scan, start and ties, so a pool whose scrapes fail behaves as before.
//!
//! Alternatives and why not: the engine's `running + waiting` alone (what L7 routers use)
//! lags a scrape interval and loses bursts, and double-counts nothing only if every
//! stream is a request (idle WebSocket sessions are not); a pure TTFT estimate needs the
//! engine's capacity, which no engine publishes in a common form. The weights are
//! configurable (`[pool.least_load]`) because fleets differ; the defaults are those the
//! fleet benchmark (`scripts/bench-fleet.sh`) was run with.
//!
//! The pick path: a few atomic loads per backend and float arithmetic; no lock, allocation,
//! clock read, and no shared write beyond the winner's count.

use super::sampler::WeightedDraw;
use super::{weighted_start, Strategy};
use crate::balance::backend::{Backend, PickCtx};
use crate::balance::spec::{CountMode, LeastLoadSpec};

#[derive(Debug)]
pub(crate) struct LeastLoad {
    draw: WeightedDraw,
    count: CountMode,
    weights: LeastLoadSpec,
}

impl LeastLoad {
    pub(crate) fn new(backends: &[Backend], count: CountMode, weights: LeastLoadSpec) -> Self {
        Self {
            draw: WeightedDraw::new(backends),
            count,
            weights,
        }
    }

    /// The backend's score at `ctx.now_ms`, or None if it cannot take a stream (full by our
    /// count or by its engine's).
    #[inline]
    fn score(&self, backend: &Backend, ctx: &PickCtx) -> Option<f64> {
        if backend.is_full(backend.state.load()) {
            return None;
        }
        let mut load = backend.counted_milli(self.count) as f64 / 1000.0;
        if let Some(p) = backend.state.engine.published_at(ctx.now_ms) {
            let r = p.reading;
            let kv = r.kv_usage.unwrap_or(0.0);
            let w = &self.weights;
            if kv >= w.kv_full || (w.waiting_full > 0 && r.waiting >= w.waiting_full) {
                return None;
            }
            let external = f64::from(r.running.saturating_sub(p.ours_at_scrape));
            load = (load + external + w.queue_weight * f64::from(r.waiting))
                * (1.0 + w.kv_weight * kv * kv);
        }
        // At least 100 for a weighted-in backend (see `effective_weight`).
        Some(load / ctx.effective_weight(backend) as f64)
    }

    fn lowest(&self, backends: &[Backend], start: usize, ctx: &PickCtx) -> Option<usize> {
        let n = backends.len();
        let mut best: Option<(usize, f64)> = None;
        let mut idx = start;
        for _ in 0..n {
            let backend = &backends[idx];
            if ctx.is_candidate(backend) {
                if let Some(score) = self.score(backend, ctx) {
                    // Strict `<` keeps the first of equal scores (ties spread by the start).
                    if best.is_none_or(|(_, b)| score < b) {
                        if score <= 0.0 {
                            return Some(idx); // nothing beats an idle backend
                        }
                        best = Some((idx, score));
                    }
                }
            }
            idx += 1;
            if idx == n {
                idx = 0;
            }
        }
        best.map(|(idx, _)| idx)
    }
}

impl Strategy for LeastLoad {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let start = weighted_start(&self.draw, backends, ctx);
        loop {
            let idx = self.lowest(backends, start, ctx)?;
            if backends[idx].try_acquire() {
                return Some(idx);
            }
            // It filled up since the scan: another pick succeeded, so rescanning is progress.
        }
    }
}

#[cfg(test)]
#[path = "least_load_tests.rs"]
mod tests;
