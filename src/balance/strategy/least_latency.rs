//! Least latency: the backend with the lowest peak-EWMA of connect time + time to first byte,
//! times (active / effective weight + 1), the weight in its configured units (slow start
//! scales it down). The peak estimate (see `latency.rs`) makes a backend that turns slow lose
//! new streams within a few picks; its decay makes one that recovers, or that has been idle a
//! while, get them back. The load term keeps one fast backend from taking everything. For an
//! inference fleet the first-byte time is prefill plus the server's own queueing, the most
//! direct signal of how busy a GPU is. The scan starts at a backend drawn by weight and keeps
//! the first of equal costs, so when latency says nothing (no samples, or all decayed to the
//! floor) and backends are idle, picks still spread by weight.
//!
//! A backend with no sample yet (new, or only connected so far) is costed just below the
//! pool's mean of the estimates that exist, so it is tried as soon as it looks no worse than
//! average (a tie with a known backend goes to it), without either starving or flooding it:
//! its active count still raises its cost, and one sample settles it. (Costed exactly at the
//! mean, a fresh pool sent 1 to 4 streams in a row to a known-slow backend by coin toss.) Scans the whole tier; the decay uses the request's
//! time, never the clock.

use super::sampler::WeightedDraw;
use super::{weighted_start, Strategy};
use crate::balance::backend::{Backend, PickCtx};
use crate::balance::slow_start;

/// 1 µs: a floor for the estimate, so that when no backend has a sample (or all estimates
/// have decayed to nothing) cost still grows with active streams: the strategy then behaves
/// as weighted least connections instead of treating every backend as free.
const MIN_ESTIMATE_MS: f64 = 0.001;
/// What a backend missing a sample pays of the pool mean it is costed at.
const UNKNOWN_DISCOUNT: f64 = 0.95;

#[derive(Debug)]
pub(crate) struct LeastLatency {
    draw: WeightedDraw,
}

impl LeastLatency {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        Self {
            draw: WeightedDraw::new(backends),
        }
    }
}

impl Strategy for LeastLatency {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let start = weighted_start(&self.draw, backends, ctx);
        loop {
            let idx = lowest_cost(backends, start, ctx)?;
            if backends[idx].try_acquire() {
                return Some(idx);
            }
            // It filled up since the scan: another pick succeeded, so rescanning is progress.
        }
    }
}

fn lowest_cost(backends: &[Backend], start: usize, ctx: &PickCtx) -> Option<usize> {
    let now = ctx.now_ms;
    let n = backends.len();
    let mut defaults: Option<(f64, f64)> = None;
    let mut best: Option<(usize, f64)> = None;
    for idx in (start..n).chain(0..start) {
        let backend = &backends[idx];
        if !ctx.is_candidate(backend) {
            continue;
        }
        let active = backend.state.load();
        if backend.is_full(active) {
            continue;
        }
        let weight = ctx.effective_weight(backend);
        let estimate = match backend.state.latency.components_at(now) {
            (Some(connect), Some(first_byte)) => connect + first_byte,
            (connect, first_byte) => {
                let (c, f) = *defaults.get_or_insert_with(|| pool_means(backends, now));
                // Just below the mean: "no worse than average" wins the tie, so an unknown
                // backend is tried at once instead of by the toss of the scan's start.
                (connect.unwrap_or(c) + first_byte.unwrap_or(f)) * UNKNOWN_DISCOUNT
            }
        };
        let load = f64::from(active) * slow_start::FULL as f64 / weight as f64;
        let cost = estimate.max(MIN_ESTIMATE_MS) * (load + 1.0);
        // Strict `<` keeps the first of equal costs in scan order.
        if best.is_none_or(|(_, best_cost)| cost < best_cost) {
            best = Some((idx, cost));
        }
    }
    best.map(|(idx, _)| idx)
}

/// Mean connect and first-byte estimates over the backends that have them (0 where none has).
fn pool_means(backends: &[Backend], now: u64) -> (f64, f64) {
    let (mut connect, mut first_byte) = ((0.0, 0u32), (0.0, 0u32));
    for backend in backends {
        let (c, f) = backend.state.latency.components_at(now);
        if let Some(c) = c {
            connect = (connect.0 + c, connect.1 + 1);
        }
        if let Some(f) = f {
            first_byte = (first_byte.0 + f, first_byte.1 + 1);
        }
    }
    let mean = |(sum, n): (f64, u32)| if n == 0 { 0.0 } else { sum / f64::from(n) };
    (mean(connect), mean(first_byte))
}
