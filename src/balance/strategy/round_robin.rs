//! Smooth weighted round robin (the nginx algorithm), made lock-free: one period of the
//! sequence is computed when the table is built, and workers share one atomic cursor into it.
//! Weights 1:2:3 give exactly 10/20/30 of every 60 picks, interleaved (never long runs).
//! An unavailable backend's turn goes to the next draw of the cursor, so the others keep
//! their exact ratios. A backend ramping up (slow start) takes its turn with probability
//! ramp/1000 and otherwise passes it on the same way. `pick` must never lock or allocate; the
//! build may take its time.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use super::{first_available, Strategy};
use crate::balance::backend::{Backend, PickCtx};

/// Longest precomputed period (entries of 4 bytes: 256 KiB at most). Larger weight sums are
/// scaled down to about this, which keeps each share exact to within 1/65536.
pub(crate) const MAX_PERIOD: u64 = 65_536;

/// Cursor draws tried before scanning linearly for any available backend. Enough when a few
/// backends are out; the scan bounds the cost when most of the weight is unavailable.
const MAX_DRAWS: usize = 16;

pub(crate) struct RoundRobin {
    /// Backend indexes in smooth WRR order, one full period.
    sequence: Box<[u32]>,
    /// Shared by all workers; on its own cache line because every pick writes it.
    cursor: CachePadded<AtomicUsize>,
}

impl RoundRobin {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        Self {
            sequence: smooth_sequence(&period_weights(&weights)).into_boxed_slice(),
            // A random start, so that frequent reloads do not keep favouring the head of the
            // sequence; any window of whole periods is exact wherever it starts.
            cursor: CachePadded::new(AtomicUsize::new(rand::random())),
        }
    }
}

impl Strategy for RoundRobin {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let period = self.sequence.len();
        if period == 0 {
            return None;
        }
        let mut idx = 0;
        for _ in 0..MAX_DRAWS.min(period) {
            let pos = self.cursor.fetch_add(1, Ordering::Relaxed) % period;
            idx = self.sequence[pos] as usize;
            let backend = &backends[idx];
            if ctx.ramp_admits(backend) && backend.try_take(ctx) {
                return Some(idx);
            }
        }
        first_available(backends, idx + 1, ctx)
    }
}

impl fmt::Debug for RoundRobin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobin")
            .field("period", &self.sequence.len())
            .finish()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn reduce(weights: &mut [u64]) {
    let g = weights.iter().copied().fold(0, gcd);
    if g > 1 {
        weights.iter_mut().for_each(|w| *w /= g);
    }
}

/// Weights of one period: divided by their gcd, then scaled down if the sum passes
/// `MAX_PERIOD` (a non-zero weight stays at least 1, so no backend is starved).
fn period_weights(weights: &[u32]) -> Vec<u64> {
    let mut period: Vec<u64> = weights.iter().map(|&w| u64::from(w)).collect();
    reduce(&mut period);
    let total: u64 = period.iter().sum();
    if total > MAX_PERIOD {
        for w in period.iter_mut().filter(|w| **w > 0) {
            *w = (*w * MAX_PERIOD / total).max(1);
        }
        reduce(&mut period);
    }
    period
}

/// One period of nginx's smooth WRR: each step every backend gains its weight, the highest
/// (first on ties) is chosen and loses the total.
fn smooth_sequence(weights: &[u64]) -> Vec<u32> {
    let total: u64 = weights.iter().sum();
    let signed_total = i64::try_from(total).unwrap_or(i64::MAX);
    let mut current = vec![0i64; weights.len()];
    let mut sequence = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate().filter(|(_, &w)| w > 0) {
            current[i] += i64::try_from(w).unwrap_or(i64::MAX);
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let Some(best) = best else { break };
        current[best] -= signed_total;
        sequence.push(u32::try_from(best).unwrap_or(u32::MAX));
    }
    sequence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::{pick_at, spec};
    use crate::balance::{Registry, StrategyKind::RoundRobin as Rr, Table};

    fn table(backends: &[(u32, u32)]) -> (Registry, Table) {
        let registry = Registry::new();
        let table = Table::build(&spec(Rr, backends), &registry);
        (registry, table)
    }

    /// Picks with immediate release; returns the chosen backend indexes.
    fn picks(table: &Table, count: usize, exclude: &[usize]) -> Vec<usize> {
        (0..count)
            .map(|_| pick_at(table, exclude, 0).unwrap().backend)
            .collect()
    }

    fn counts(seq: &[usize], n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        seq.iter().for_each(|&i| counts[i] += 1);
        counts
    }

    fn max_run(seq: &[usize]) -> usize {
        seq.chunk_by(|a, b| a == b)
            .map(<[usize]>::len)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn exact_shares_every_period_and_short_runs() {
        let (_r, table) = table(&[(1, 0), (2, 0), (3, 0)]);
        let seq = picks(&table, 600, &[]);
        for window in seq.chunks(60) {
            assert_eq!(counts(window, 3), vec![10, 20, 30]);
        }
        assert!(max_run(&seq) <= 2, "runs too long: {:?}", &seq[..12]);
    }

    #[test]
    fn gcd_shrinks_the_period() {
        assert_eq!(period_weights(&[100, 200, 300]), vec![1, 2, 3]);
        assert_eq!(smooth_sequence(&[1, 2, 3]), vec![2, 1, 0, 2, 1, 2]);
    }

    #[test]
    fn huge_weights_are_capped_without_starving() {
        let weights = period_weights(&[1_000_000, 999_999, 3, 0]);
        let seq = smooth_sequence(&weights);
        assert!(seq.len() as u64 <= MAX_PERIOD);
        let seq: Vec<usize> = seq.iter().map(|&i| i as usize).collect();
        let c = counts(&seq, 4);
        assert!(c[0].abs_diff(c[1]) <= 1, "{c:?}");
        assert_eq!(c[2], 1);
        assert_eq!(c[3], 0);
    }

    #[test]
    fn unavailable_turns_go_to_the_others_in_ratio() {
        let (_r, table) = table(&[(1, 0), (2, 0), (3, 0), (0, 0)]);
        let seq = picks(&table, 300, &[2]);
        assert_eq!(counts(&seq, 4), vec![100, 200, 0, 0]);

        let failing = pick_at(&table, &[0, 1], 0).unwrap();
        assert!(failing.guard.connect_failed(0));
        drop(failing);
        let seq = picks(&table, 300, &[]);
        assert_eq!(counts(&seq, 4), vec![100, 200, 0, 0], "backend 2 is down");
    }

    #[test]
    fn full_backends_are_skipped_and_limit_holds() {
        let (_r, table) = table(&[(1, 1), (1, 2), (1, 0)]);
        let held: Vec<_> = (0..30).map(|_| pick_at(&table, &[2], 0)).collect();
        assert_eq!(held.iter().filter(|p| p.is_ok()).count(), 3);
        let active: Vec<u32> = table.snapshot(0)[0]
            .backends
            .iter()
            .map(|b| b.active)
            .collect();
        assert_eq!(active, vec![1, 2, 0]);
        let seq = picks(&table, 10, &[]);
        assert!(seq.iter().all(|&i| i == 2), "only backend 2 has room");
    }

    #[test]
    fn nothing_available_gives_none() {
        let (_r, drained) = table(&[(0, 0), (1, 0)]);
        assert!(pick_at(&drained, &[1], 0).is_err());
        let (_r, empty) = table(&[]);
        assert!(pick_at(&empty, &[], 0).is_err());
    }
}
