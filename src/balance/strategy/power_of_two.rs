//! Power of two choices: draw two distinct backends (each with probability by weight), and the
//! one with the lower active / effective weight wins; ties keep the first draw, so idle pools
//! spread exactly by weight. Close to least-connections balance without reading every backend,
//! and two workers picking at once rarely pile onto the same backend (the herd effect a shared
//! "least loaded" view has). Draws come from the per-thread RNG: no shared write but the
//! winner's count. A slow-start ramp applies twice on purpose: a ramping backend is drawn less
//! often (probability ramp/1000) and counts as more loaded, so it never gets more than its
//! ramped share.

use super::sampler::WeightedDraw;
use super::{first_available, rng, Strategy};
use crate::balance::backend::{Backend, PickCtx};

/// Draws spent looking for two usable candidates before settling for one, or for a linear pass.
const MAX_DRAWS: usize = 16;

#[derive(Debug)]
pub(crate) struct PowerOfTwo {
    draw: WeightedDraw,
}

impl PowerOfTwo {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        Self {
            draw: WeightedDraw::new(backends),
        }
    }
}

/// A usable candidate: (position, active, effective weight).
type Candidate = (usize, u128, u128);

impl Strategy for PowerOfTwo {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let mut first: Option<Candidate> = None;
        if backends.len() > 1 {
            for _ in 0..MAX_DRAWS {
                let idx = self.draw.draw()?;
                if first.is_some_and(|(f, _, _)| f == idx) {
                    continue;
                }
                let Some(second) = candidate(backends, idx, ctx) else {
                    continue;
                };
                let Some(one) = first else {
                    first = Some(second);
                    continue;
                };
                let (winner, loser) = if second.1 * one.2 < one.1 * second.2 {
                    (second.0, one.0)
                } else {
                    (one.0, second.0)
                };
                if backends[winner].try_acquire() {
                    return Some(winner);
                }
                if backends[loser].try_acquire() {
                    return Some(loser);
                }
                first = None; // both filled up since the draw: draw again
            }
        }
        if let Some((idx, _, _)) = first {
            if backends[idx].try_acquire() {
                return Some(idx);
            }
        }
        let start = rng::below(backends.len() as u64) as usize;
        first_available(backends, start, ctx)
    }
}

/// The drawn backend as a candidate, if it is usable and its ramp admits it.
#[inline]
fn candidate(backends: &[Backend], idx: usize, ctx: &PickCtx) -> Option<Candidate> {
    let backend = &backends[idx];
    if !ctx.is_candidate(backend) {
        return None;
    }
    let active = backend.state.load();
    if backend.is_full(active) || !ctx.ramp_admits(backend) {
        return None;
    }
    let weight = ctx.effective_weight(backend);
    Some((idx, u128::from(active), u128::from(weight)))
}

#[cfg(test)]
mod tests {
    use crate::balance::strategy::test_support::{pick_at, spec};
    use crate::balance::{seed_thread_rng, Pick, Registry, StrategyKind::PowerOfTwo, Table};

    fn active(table: &Table) -> Vec<u32> {
        table.snapshot(0)[0]
            .backends
            .iter()
            .map(|b| b.active)
            .collect()
    }

    #[test]
    fn held_streams_stay_even() {
        seed_thread_rng(1);
        let registry = Registry::new();
        let table = Table::build(&spec(PowerOfTwo, &[(1, 0); 3]), &registry);
        let held: Vec<Pick> = (0..30).map(|_| pick_at(&table, &[], 0).unwrap()).collect();
        let counts = active(&table);
        let (max, min) = (counts.iter().max().unwrap(), counts.iter().min().unwrap());
        assert!(max - min <= 3, "{counts:?}");
        drop(held);
        assert_eq!(active(&table), vec![0, 0, 0]);
    }

    #[test]
    fn single_usable_backend_and_limits() {
        seed_thread_rng(2);
        let registry = Registry::new();
        let table = Table::build(&spec(PowerOfTwo, &[(1, 2), (5, 0), (0, 0)]), &registry);
        let held: Vec<Pick> = (0..2).map(|_| pick_at(&table, &[1], 0).unwrap()).collect();
        assert!(held.iter().all(|p| p.backend == 0));
        assert!(pick_at(&table, &[1], 0).is_err(), "full, excluded, drained");
        let single = Table::build(&spec(PowerOfTwo, &[(3, 0)]), &Registry::new());
        assert_eq!(pick_at(&single, &[], 0).unwrap().backend, 0);
        assert!(pick_at(&single, &[0], 0).is_err());
    }
}
