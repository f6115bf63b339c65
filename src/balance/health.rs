//! Passive health of one backend, learned from the outcome of real connects (no probes) and,
//! with `early_close`, from streams the backend resets before sending a byte.
//! It is read on every pick, so reads must stay plain atomic loads: never a lock, never a clock
//! read. Time is passed in (`now_ms`), by the engine from its clock and by tests as they like.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::spec::HealthPolicy;

/// Failure counter, down deadline and backoff of one backend, plus the policy of the newest
/// table that uses it (a reload may change the policy while connections are in flight).
#[derive(Debug, Default)]
pub(crate) struct PassiveHealth {
    consecutive_failures: AtomicU32,
    /// `clock::now_ms()` before which the backend is skipped; 0 = not down.
    down_until_ms: AtomicU64,
    /// The backoff used the last time it went down; 0 = not down since the last success.
    backoff_ms: AtomicU64,
    fail_threshold: AtomicU32,
    backoff_min_ms: AtomicU64,
    backoff_max_ms: AtomicU64,
    /// Streams reset by the backend before its first byte, in a row (`early_close` only).
    /// Kept apart from connect failures: every such stream had a successful connect first.
    early_closes: AtomicU32,
    early_close: AtomicBool,
}

impl PassiveHealth {
    pub(crate) fn set_policy(&self, policy: &HealthPolicy) {
        let min = duration_ms(policy.backoff_min).max(1);
        let max = duration_ms(policy.backoff_max).max(min);
        self.fail_threshold
            .store(policy.fail_threshold, Ordering::Relaxed);
        self.backoff_min_ms.store(min, Ordering::Relaxed);
        self.backoff_max_ms.store(max, Ordering::Relaxed);
        self.early_close
            .store(policy.early_close, Ordering::Relaxed);
    }

    /// The deadline alone (0 = not down, and not half-open either).
    #[inline]
    pub(crate) fn down_until_ms(&self) -> u64 {
        self.down_until_ms.load(Ordering::Acquire)
    }

    /// True if the backend is skipped at `now_ms`: marked down and its backoff not over.
    #[inline]
    pub(crate) fn is_down_at(&self, now_ms: u64) -> bool {
        now_ms < self.down_until_ms()
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Records one connect failure; returns true if this very failure marked the backend down.
    /// Failures of connects started before it went down only count, they do not extend it.
    pub(crate) fn record_failure_at(&self, now_ms: u64) -> bool {
        let failures = self
            .consecutive_failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some(f.saturating_add(1))
            })
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        self.mark_down_if(failures, now_ms)
    }

    /// The backend reset a stream before sending its first byte, at `now_ms`. Counts only with
    /// `early_close`; returns true if this marked the backend down.
    pub(crate) fn record_early_close_at(&self, now_ms: u64) -> bool {
        if !self.early_close.load(Ordering::Relaxed) {
            return false;
        }
        let closes = self
            .early_closes
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        self.mark_down_if(closes, now_ms)
    }

    /// A stream that connected ended without an early close: the backend serves again, so
    /// the next connect success may clear a down mark. Writes only if there is something to
    /// forget.
    pub(crate) fn record_stream_served(&self) {
        if self.early_closes.load(Ordering::Relaxed) != 0 {
            self.early_closes.store(0, Ordering::Relaxed);
        }
    }

    /// Marks the backend down at `now_ms` if `count` failures in a row reach the threshold and
    /// it is not down already; returns true if this call marked it.
    fn mark_down_if(&self, failures: u32, now_ms: u64) -> bool {
        let threshold = self.fail_threshold.load(Ordering::Relaxed);
        if threshold == 0 || failures < threshold {
            return false;
        }
        let until = self.down_until_ms.load(Ordering::Acquire);
        if now_ms < until {
            return false;
        }
        // Past the threshold and not down: either the first time, or the half-open period after
        // a backoff ended. The CAS elects one thread per down period, so racing failures cannot
        // double the backoff twice.
        let min = self.backoff_min_ms.load(Ordering::Relaxed).max(1);
        let max = self.backoff_max_ms.load(Ordering::Relaxed).max(min);
        let backoff = next_backoff(self.backoff_ms.load(Ordering::Acquire), min, max);
        let new_until = now_ms.saturating_add(backoff).max(1);
        if self
            .down_until_ms
            .compare_exchange(until, new_until, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.backoff_ms.store(backoff, Ordering::Release);
        tracing::debug!(failures, backoff_ms = backoff, "backend marked down");
        true
    }

    /// A connect succeeded: the backend accepts again, forget failures and backoff.
    /// Stores only what is not already reset, so the common case writes nothing shared.
    /// Returns true if this cleared a down mark (the backend is back up). While its streams
    /// keep ending in early closes, a successful connect proves nothing: the mark stays (its
    /// backoff still ends, so trial streams get through) until a stream is served.
    pub(crate) fn record_success(&self) -> bool {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.early_closes.load(Ordering::Relaxed) != 0 {
            return false;
        }
        if self.backoff_ms.load(Ordering::Relaxed) != 0 {
            self.backoff_ms.store(0, Ordering::Release);
        }
        self.down_until_ms.load(Ordering::Relaxed) != 0
            && self.down_until_ms.swap(0, Ordering::AcqRel) != 0
    }
}

fn next_backoff(previous_ms: u64, min_ms: u64, max_ms: u64) -> u64 {
    if previous_ms == 0 {
        min_ms
    } else {
        previous_ms.saturating_mul(2).clamp(min_ms, max_ms)
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn health(threshold: u32, min_ms: u64, max_ms: u64) -> PassiveHealth {
        let h = PassiveHealth::default();
        h.set_policy(&HealthPolicy {
            fail_threshold: threshold,
            backoff_min: Duration::from_millis(min_ms),
            backoff_max: Duration::from_millis(max_ms),
            early_close: true,
        });
        h
    }

    #[test]
    fn three_failures_mark_down_for_backoff_min() {
        let h = health(3, 1000, 30_000);
        assert!(!h.record_failure_at(100));
        assert!(!h.record_failure_at(100));
        assert!(!h.is_down_at(100));
        assert!(h.record_failure_at(100));
        assert!(h.is_down_at(100));
        assert!(h.is_down_at(1099));
        assert!(!h.is_down_at(1100), "half-open once the backoff ends");
        assert_eq!(h.consecutive_failures(), 3);
    }

    #[test]
    fn failures_while_down_do_not_extend() {
        let h = health(3, 1000, 30_000);
        for _ in 0..3 {
            h.record_failure_at(0);
        }
        assert!(!h.record_failure_at(500));
        assert!(!h.is_down_at(1000));
        assert_eq!(h.consecutive_failures(), 4);
    }

    #[test]
    fn backoff_doubles_in_half_open_up_to_the_cap() {
        let h = health(3, 1000, 5000);
        let mut now = 0;
        for _ in 0..3 {
            h.record_failure_at(now);
        }
        let mut seen = Vec::new();
        for _ in 0..5 {
            let until = h.down_until_ms();
            seen.push(until - now);
            now = until; // the backoff ended: one failure re-marks it down
            assert!(!h.is_down_at(now));
            assert!(h.record_failure_at(now));
        }
        seen.push(h.down_until_ms() - now);
        assert_eq!(seen, vec![1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn success_resets_failures_and_backoff() {
        let h = health(3, 1000, 30_000);
        for _ in 0..3 {
            h.record_failure_at(0);
        }
        assert!(h.record_failure_at(1000)); // backoff now 2000
        h.record_success();
        assert!(!h.is_down_at(1001));
        assert_eq!(h.consecutive_failures(), 0);
        assert!(!h.record_failure_at(2000));
        assert!(!h.record_failure_at(2000));
        assert!(h.record_failure_at(2000));
        assert_eq!(h.down_until_ms(), 3000, "backoff restarted at the minimum");
    }

    #[test]
    fn early_closes_mark_down_until_a_stream_is_served() {
        let h = health(3, 1000, 30_000);
        for _ in 0..2 {
            assert!(!h.record_success(), "the connect of each stream succeeds");
            assert!(!h.record_early_close_at(0));
        }
        assert!(!h.record_success());
        assert!(h.record_early_close_at(0), "the third early close in a row");
        assert!(h.is_down_at(999));
        assert!(!h.record_success(), "a connect alone does not clear it");
        assert!(!h.is_down_at(1000), "half-open once the backoff ends");
        assert!(h.record_early_close_at(1000), "still closing: down again");
        assert_eq!(h.down_until_ms(), 3000, "with a doubled backoff");
        h.record_stream_served();
        assert!(h.record_success(), "served, then connected: back up");
        assert_eq!(h.down_until_ms(), 0);
    }

    #[test]
    fn early_close_counts_only_when_enabled() {
        let h = health(1, 1000, 30_000);
        h.set_policy(&HealthPolicy {
            fail_threshold: 1,
            ..HealthPolicy::default()
        });
        assert!(!h.record_early_close_at(0));
        assert!(!h.is_down_at(0));
    }

    #[test]
    fn threshold_zero_never_marks_down() {
        let h = health(0, 1000, 30_000);
        for _ in 0..10 {
            assert!(!h.record_failure_at(0));
        }
        assert!(!h.is_down_at(0));
    }
}
