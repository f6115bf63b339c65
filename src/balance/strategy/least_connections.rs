//! Weighted least connections: the backend with the lowest active / effective weight wins.
//! Suits LLM streams, whose lengths vary by orders of magnitude, so counts say more than turns.
//! Ratios are compared by cross-multiplication in u128 (exact, no floats). The scan starts at
//! a backend drawn by weight and keeps the first of equal ratios, so ties (an idle pool, or a
//! busy one in balance) spread by weight even for requests released at once; an idle backend
//! ends the scan, since nothing beats it. No shared write beyond the winner's count.
//! With `count = "generating"` a stream counted idle weighs `idle_weight` (in thousandths, so
//! the comparison stays exact).

use super::sampler::WeightedDraw;
use super::{weighted_start, Strategy};
use crate::balance::backend::{Backend, PickCtx};
use crate::balance::spec::CountMode;

#[derive(Debug)]
pub(crate) struct LeastConnections {
    draw: WeightedDraw,
    count: CountMode,
}

impl LeastConnections {
    pub(crate) fn new(backends: &[Backend], count: CountMode) -> Self {
        Self {
            draw: WeightedDraw::new(backends),
            count,
        }
    }
}

impl Strategy for LeastConnections {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let start = weighted_start(&self.draw, backends, ctx);
        loop {
            let idx = least_loaded(backends, start, ctx, self.count)?;
            if backends[idx].try_acquire() {
                return Some(idx);
            }
            // It filled up since the scan: another pick succeeded, so rescanning is progress.
        }
    }
}

fn least_loaded(
    backends: &[Backend],
    start: usize,
    ctx: &PickCtx,
    count: CountMode,
) -> Option<usize> {
    let n = backends.len();
    // (index, active, effective weight) of the best so far; strict `<` keeps the first.
    let mut best: Option<(usize, u128, u128)> = None;
    let mut idx = start;
    for _ in 0..n {
        let backend = &backends[idx];
        if ctx.is_candidate(backend) && !backend.is_full(backend.state.load()) {
            let (active, weight) = (
                u128::from(backend.counted_milli(count)),
                u128::from(ctx.effective_weight(backend)),
            );
            let better = match best {
                None => true,
                Some((_, best_active, best_weight)) => active * best_weight < best_active * weight,
            };
            if better {
                if active == 0 {
                    return Some(idx); // nothing beats an idle backend
                }
                best = Some((idx, active, weight));
            }
        }
        idx += 1;
        if idx == n {
            idx = 0;
        }
    }
    best.map(|(idx, _, _)| idx)
}

#[cfg(test)]
mod tests {
    use crate::balance::strategy::test_support::{pick_at, spec};
    use crate::balance::{Pick, Registry};
    use crate::balance::{StrategyKind::LeastConnections, Table};

    fn table(backends: &[(u32, u32)]) -> (Registry, Table) {
        let registry = Registry::new();
        let table = Table::build(&spec(LeastConnections, backends), &registry);
        (registry, table)
    }

    fn active(table: &Table) -> Vec<u32> {
        table.snapshot(0)[0]
            .backends
            .iter()
            .map(|b| b.active)
            .collect()
    }

    #[test]
    fn picks_the_least_loaded() {
        let (_r, table) = table(&[(1, 0); 3]);
        let mut held: Vec<Pick> = Vec::new();
        held.push(pick_at(&table, &[1, 2], 0).unwrap());
        held.push(pick_at(&table, &[1, 2], 0).unwrap());
        held.push(pick_at(&table, &[0, 2], 0).unwrap());
        assert_eq!(active(&table), vec![2, 1, 0]);
        let pick = pick_at(&table, &[], 0).unwrap();
        assert_eq!(pick.backend, 2);
        held.push(pick);
        for _ in 0..10 {
            let pick = pick_at(&table, &[], 0).unwrap();
            assert_ne!(pick.backend, 0, "backend 0 has the most connections");
        }
    }

    #[test]
    fn weighted_held_picks_converge_exactly() {
        let (_r, table) = table(&[(1, 0), (2, 0), (3, 0)]);
        let held: Vec<Pick> = (0..60).map(|_| pick_at(&table, &[], 0).unwrap()).collect();
        assert_eq!(active(&table), vec![10, 20, 30]);
        drop(held);
        assert_eq!(active(&table), vec![0, 0, 0]);
    }

    #[test]
    fn ties_spread_over_all_backends() {
        crate::balance::seed_thread_rng(11);
        let (_r, table) = table(&[(1, 0); 5]);
        let mut hits = [0u32; 5];
        for _ in 0..1000 {
            let pick = pick_at(&table, &[], 0).unwrap();
            hits[pick.backend] += 1;
        }
        // 200 each expected; the bounds are over 3 standard deviations away.
        assert!(
            hits.iter().all(|&h| (160..=240).contains(&h)),
            "uneven ties: {hits:?}"
        );
    }

    #[test]
    fn skips_down_excluded_full_and_drained() {
        let (_r, table) = table(&[(1, 0), (1, 0), (1, 1), (0, 0), (1, 0)]);
        let failing = pick_at(&table, &[1, 2, 3, 4], 0).unwrap();
        assert_eq!(failing.backend, 0);
        assert!(failing.guard.connect_failed(0), "threshold 1 marks it down");
        drop(failing);
        let full = pick_at(&table, &[0, 1, 3, 4], 0).unwrap();
        assert_eq!(full.backend, 2);
        for _ in 0..20 {
            let pick = pick_at(&table, &[1], 10).unwrap();
            assert_eq!(pick.backend, 4);
        }
        assert!(pick_at(&table, &[1, 4], 10).is_err());
        let after_backoff = pick_at(&table, &[1, 4], 1000).unwrap();
        assert_eq!(after_backoff.backend, 0, "half-open once the backoff ends");
    }

    #[test]
    fn max_connections_never_exceeded() {
        let (_r, table) = table(&[(5, 2), (1, 3)]);
        let held: Vec<Pick> = (0..5).map(|_| pick_at(&table, &[], 0).unwrap()).collect();
        assert!(pick_at(&table, &[], 0).is_err());
        assert_eq!(active(&table), vec![2, 3]);
        drop(held);
        assert_eq!(active(&table), vec![0, 0]);
    }
}
