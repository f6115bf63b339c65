//! Weighted random: each pick draws a backend with probability weight / total. No shared
//! cursor and no scan, so it costs the same at 3 or 300 backends and writes nothing shared
//! except the winner's count. An unavailable draw (down, full, excluded, or declined by its
//! slow-start ramp) is redrawn, which keeps the others in ratio; after a few misses a linear
//! pass from a random start bounds the cost when most of the pool is out.

use super::sampler::WeightedDraw;
use super::{first_available, rng, Strategy};
use crate::balance::backend::{Backend, PickCtx};

/// Draws before the linear pass: enough when a few backends are out.
const MAX_DRAWS: usize = 16;

#[derive(Debug)]
pub(crate) struct Random {
    draw: WeightedDraw,
}

impl Random {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        Self {
            draw: WeightedDraw::new(backends),
        }
    }
}

impl Strategy for Random {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        for _ in 0..MAX_DRAWS {
            let idx = self.draw.draw()?;
            let backend = &backends[idx];
            if ctx.ramp_admits(backend) && backend.try_take(ctx) {
                return Some(idx);
            }
        }
        let start = rng::below(backends.len() as u64) as usize;
        first_available(backends, start, ctx)
    }
}

#[cfg(test)]
mod tests {
    use crate::balance::strategy::test_support::{pick_at, spec};
    use crate::balance::{seed_thread_rng, Registry, StrategyKind::Random, Table};

    #[test]
    fn shares_follow_weights_and_skip_the_unavailable() {
        seed_thread_rng(5);
        let registry = Registry::new();
        let table = Table::build(&spec(Random, &[(1, 0), (2, 0), (0, 0), (1, 1)]), &registry);
        let held = pick_at(&table, &[0, 1], 0).unwrap();
        assert_eq!(held.backend, 3, "only backend 3 is allowed");
        let mut hits = [0u32; 4];
        for _ in 0..3000 {
            hits[pick_at(&table, &[], 0).unwrap().backend] += 1;
        }
        assert_eq!((hits[2], hits[3]), (0, 0), "drained and full: {hits:?}");
        assert!((900..1100).contains(&hits[0]), "{hits:?}");
        drop(held);
        assert!(pick_at(&table, &[0, 1, 3], 0).is_err());
    }
}
