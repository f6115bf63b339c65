//! Weighted least connections: the backend with the lowest active/weight wins. Suits LLM
//! streams, whose lengths vary by orders of magnitude, so counts say more than turns.
//! Ratios are compared by cross-multiplication in u64 (exact, no floats). The scan starts at a
//! per-thread rotating offset so ties never all land on the first backend, without any shared
//! write beyond the winner's own count.

use super::{rotating_start, Strategy};
use crate::balance::backend::Backend;
use crate::balance::health::LazyNow;

#[derive(Debug)]
pub(crate) struct LeastConnections;

impl Strategy for LeastConnections {
    fn pick(&self, backends: &[Backend], exclude: &[usize], now: &mut LazyNow) -> Option<usize> {
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = rotating_start(n);
        loop {
            let idx = least_loaded(backends, start, exclude, now)?;
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
    exclude: &[usize],
    now: &mut LazyNow,
) -> Option<usize> {
    let n = backends.len();
    // (index, active, weight) of the best so far; strict `<` keeps the first in scan order.
    let mut best: Option<(usize, u64, u64)> = None;
    let mut idx = start;
    for _ in 0..n {
        let backend = &backends[idx];
        if backend.weight != 0 && !exclude.contains(&idx) {
            let active = backend.state.active();
            if !backend.is_full(active) && !now.is_down(&backend.state.health) {
                let (active, weight) = (u64::from(active), u64::from(backend.weight));
                let better = match best {
                    None => true,
                    Some((_, best_active, best_weight)) => {
                        active * best_weight < best_active * weight
                    }
                };
                if better {
                    if active == 0 {
                        return Some(idx); // nothing beats an idle backend
                    }
                    best = Some((idx, active, weight));
                }
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
    use crate::balance::strategy::test_support::spec;
    use crate::balance::{Pick, Registry};
    use crate::balance::{StrategyKind::LeastConnections, Table};

    fn table(backends: &[(u32, u32)]) -> (Registry, Table) {
        let registry = Registry::new();
        let table = Table::build(&spec(LeastConnections, backends), &registry);
        (registry, table)
    }

    fn active(table: &Table) -> Vec<u32> {
        table.snapshot()[0]
            .backends
            .iter()
            .map(|b| b.active)
            .collect()
    }

    #[test]
    fn picks_the_least_loaded() {
        let (_r, table) = table(&[(1, 0); 3]);
        let mut held: Vec<Pick> = Vec::new();
        held.push(table.pick_at(0, &[1, 2], 0).unwrap());
        held.push(table.pick_at(0, &[1, 2], 0).unwrap());
        held.push(table.pick_at(0, &[0, 2], 0).unwrap());
        assert_eq!(active(&table), vec![2, 1, 0]);
        let pick = table.pick_at(0, &[], 0).unwrap();
        assert_eq!(pick.backend, 2);
        held.push(pick);
        for _ in 0..10 {
            let pick = table.pick_at(0, &[], 0).unwrap();
            assert_ne!(pick.backend, 0, "backend 0 has the most connections");
        }
    }

    #[test]
    fn weighted_held_picks_converge_exactly() {
        let (_r, table) = table(&[(1, 0), (2, 0), (3, 0)]);
        let held: Vec<Pick> = (0..60).map(|_| table.pick_at(0, &[], 0).unwrap()).collect();
        assert_eq!(active(&table), vec![10, 20, 30]);
        drop(held);
        assert_eq!(active(&table), vec![0, 0, 0]);
    }

    #[test]
    fn ties_rotate_over_all_backends() {
        let (_r, table) = table(&[(1, 0); 5]);
        let mut hits = [0u32; 5];
        for _ in 0..300 {
            let pick = table.pick_at(0, &[], 0).unwrap();
            hits[pick.backend] += 1;
        }
        assert!(hits.iter().all(|&h| h >= 50), "uneven ties: {hits:?}");
    }

    #[test]
    fn skips_down_excluded_full_and_drained() {
        let (_r, table) = table(&[(1, 0), (1, 0), (1, 1), (0, 0), (1, 0)]);
        let failing = table.pick_at(0, &[1, 2, 3, 4], 0).unwrap();
        assert_eq!(failing.backend, 0);
        assert!(
            failing.guard.connect_failed_at(0),
            "threshold 1 marks it down"
        );
        drop(failing);
        let full = table.pick_at(0, &[0, 1, 3, 4], 0).unwrap();
        assert_eq!(full.backend, 2);
        for _ in 0..20 {
            let pick = table.pick_at(0, &[1], 10).unwrap();
            assert_eq!(pick.backend, 4);
        }
        assert!(table.pick_at(0, &[1, 4], 10).is_none());
        let after_backoff = table.pick_at(0, &[1, 4], 1000).unwrap();
        assert_eq!(after_backoff.backend, 0, "half-open once the backoff ends");
    }

    #[test]
    fn max_connections_never_exceeded() {
        let (_r, table) = table(&[(5, 2), (1, 3)]);
        let held: Vec<Pick> = (0..5).map(|_| table.pick_at(0, &[], 0).unwrap()).collect();
        assert!(table.pick_at(0, &[], 0).is_none());
        assert_eq!(active(&table), vec![2, 3]);
        drop(held);
        assert_eq!(active(&table), vec![0, 0]);
    }
}
