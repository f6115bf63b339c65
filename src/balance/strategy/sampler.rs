//! Weighted draws over one tier's backends, built once per table: a prefix-sum array searched
//! in O(log n). Drained backends (weight 0) have no width and are never drawn. Drawing must
//! never allocate; availability is the caller's business (it redraws).

use super::rng;
use crate::balance::backend::Backend;

#[derive(Debug)]
pub(crate) struct WeightedDraw {
    /// `cumulative[i]` = sum of the weights of backends 0..=i.
    cumulative: Box<[u64]>,
}

impl WeightedDraw {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        let cumulative = backends
            .iter()
            .scan(0u64, |sum, b| {
                *sum += u64::from(b.weight);
                Some(*sum)
            })
            .collect();
        Self { cumulative }
    }

    /// A backend index with probability weight / total; None if every weight is 0.
    #[inline]
    pub(crate) fn draw(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let r = rng::below(total);
        Some(self.cumulative.partition_point(|&c| c <= r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::backends;

    #[test]
    fn draws_follow_weights_and_skip_drained() {
        rng::seed_thread_rng(3);
        let draw = WeightedDraw::new(&backends(&[1, 0, 3]));
        let mut hits = [0u32; 3];
        for _ in 0..40_000 {
            hits[draw.draw().unwrap()] += 1;
        }
        assert_eq!(hits[1], 0);
        assert!((9_500..10_500).contains(&hits[0]), "{hits:?}");
        assert!(WeightedDraw::new(&backends(&[0, 0])).draw().is_none());
        assert!(WeightedDraw::new(&[]).draw().is_none());
    }
}
