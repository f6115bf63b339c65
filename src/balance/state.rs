//! Live state of one backend: the active connection count and its passive health. It lives in
//! an `Arc` outside any table, so rebuilding the table on a reload keeps both. The count must
//! never be released twice or go below zero, and never exceed `max_connections` when acquired
//! through [`BackendState::try_acquire`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::health::PassiveHealth;

/// How tables and guards hold a backend's state. Padded to its own cache line(s): a pick reads
/// the count and the down deadline together, so they share one line, and neighbouring
/// backends (written by other workers) stay off it.
pub(crate) type SharedState = Arc<CachePadded<BackendState>>;

/// Shared by every table (and every live guard) that refers to the same (pool, addr).
#[derive(Debug, Default)]
pub(crate) struct BackendState {
    /// Written on every pick and release by every worker.
    active: AtomicU32,
    pub(crate) health: PassiveHealth,
}

impl BackendState {
    #[inline]
    pub(crate) fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Takes one connection slot; false if `max` (> 0) slots are already taken.
    /// The CAS loop makes the limit exact under races; unlimited takes the cheaper fetch_add.
    #[inline]
    pub(crate) fn try_acquire(&self, max: u32) -> bool {
        if max == 0 {
            let previous = self.active.fetch_add(1, Ordering::AcqRel);
            debug_assert!(previous < u32::MAX, "active count overflow");
            return true;
        }
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives one slot back. Only `ActiveGuard::drop` calls this, once per acquire.
    #[inline]
    pub(crate) fn release(&self) {
        let result = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
        debug_assert!(result.is_ok(), "active count released below zero");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_acquire_stops_at_max() {
        let s = BackendState::default();
        assert!(s.try_acquire(2));
        assert!(s.try_acquire(2));
        assert!(!s.try_acquire(2));
        assert_eq!(s.active(), 2);
        s.release();
        assert!(s.try_acquire(2));
        assert_eq!(s.active(), 2);
    }

    #[test]
    fn unlimited_acquire_and_release_balance() {
        let s = BackendState::default();
        for _ in 0..100 {
            assert!(s.try_acquire(0));
        }
        assert_eq!(s.active(), 100);
        for _ in 0..100 {
            s.release();
        }
        assert_eq!(s.active(), 0);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "below zero")]
    fn release_below_zero_is_caught_in_debug() {
        BackendState::default().release();
    }
}
