//! Live state of one backend: the active connection count, its passive health, what active
//! checks say about it, its latency estimates and when it came (back) up. It lives in an `Arc` outside any table, so rebuilding
//! the table on a reload keeps all of them. The count must never be released twice or go below
//! zero, and never exceed `max_connections` when acquired through [`BackendState::try_acquire`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::check_state::{CheckFailure, CheckState, CheckStatus};
use super::counters::BackendCounters;
use super::engine_load::{EngineLoad, EngineReading};
use super::health::PassiveHealth;
use super::latency::Latency;
use super::slow_start;

/// How tables and guards hold a backend's state. Padded to its own cache line(s): a pick reads
/// the count and the down deadline together, so they share one line, and neighbouring
/// backends (written by other workers) stay off it.
pub(crate) type SharedState = Arc<CachePadded<BackendState>>;

/// Shared by every table (and every live guard) that refers to the same (pool, addr).
#[derive(Debug, Default)]
pub(crate) struct BackendState {
    /// Written on every pick and release by every worker.
    active: AtomicU32,
    /// Streams another ringlb process has open to this backend: the one that handed its
    /// sockets over to this one and is draining (it reports them every ~500 ms). Written by
    /// the hand-over thread only, read by picks next to `active` (same cache line); never part
    /// of `active`, so this process's own count stays exact.
    foreign: AtomicU32,
    /// Of `active`, the streams whose backend has sent nothing for the pool's `idle_after`
    /// (an idle WebSocket session between turns, an SSE stream waiting on a tool call). Kept
    /// only for pools that count `generating` or pick by `least_load`; written on a stream's
    /// transitions (`ActiveGuard::set_quiet`), never on a pick, so the common pick writes
    /// nothing more than before. Never above `active`, except for a moment between a
    /// release and a reader's two loads (readers saturate).
    quiet: AtomicU32,
    /// Written by the control plane's checker on a transition, read by every pick.
    pub(crate) check: CheckState,
    pub(crate) health: PassiveHealth,
    pub(crate) latency: Latency,
    /// The backend's inference engine's own load, from its `/metrics` (`[pool.engine_metrics]`).
    pub(crate) engine: EngineLoad,
    /// `clock::now_ms()` (at least 1) from which slow start ramps this backend; 0 = not
    /// ramping. Cleared by the first pick that sees the ramp finished, so that steady-state
    /// picks never need the clock.
    up_since_ms: AtomicU64,
    /// For metrics only; on lines of their own, away from the count picks read.
    pub(crate) counters: CachePadded<BackendCounters>,
    /// A reload removed this backend: its live streams are cut at this `clock::now_ms()`
    /// time (the pool's `drain_timeout`); 0 = not removed. Read by workers every few seconds,
    /// never on the pick path.
    removed_deadline_ms: AtomicU64,
    /// The pool this state belongs to (its identity is pool and address), for log lines.
    pool: Box<str>,
}

impl BackendState {
    /// A fresh state of a backend of pool `pool`.
    pub(crate) fn of_pool(pool: &str) -> BackendState {
        BackendState {
            pool: pool.into(),
            ..BackendState::default()
        }
    }

    pub(crate) fn pool(&self) -> &str {
        &self.pool
    }

    /// This process's own streams on the backend.
    #[inline]
    pub(crate) fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// The count strategies weigh a backend by (and compare with `max_connections`): our own
    /// streams plus those of a draining predecessor ([`Self::set_foreign`]). Two loads of one
    /// cache line; the exact limit is still enforced on `active` alone by `try_acquire`.
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.active().saturating_add(self.foreign())
    }

    /// Our streams counted idle (see `quiet`).
    #[inline]
    pub(crate) fn quiet(&self) -> u32 {
        self.quiet.load(Ordering::Relaxed)
    }

    /// A stream of ours went idle (`true`) or busy again.
    #[inline]
    pub(crate) fn set_quiet(&self, quiet: bool) {
        if quiet {
            self.quiet.fetch_add(1, Ordering::Relaxed);
        } else {
            let result = self
                .quiet
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            debug_assert!(result.is_ok(), "quiet count released below zero");
        }
    }

    /// Streams on the backend that are not idle: ours and a predecessor's, less our idle ones.
    #[inline]
    pub(crate) fn busy(&self) -> u32 {
        self.load().saturating_sub(self.quiet())
    }

    /// Publishes a scrape of the backend's engine, valid until `fresh_until_ms`, with how many
    /// of our streams were busy on it as it was taken (see `engine_load::Published`).
    pub(crate) fn publish_engine(&self, reading: EngineReading, fresh_until_ms: u64) {
        self.engine.publish(reading, self.busy(), fresh_until_ms);
    }

    /// Streams of the process this one took over from (0 when there is none).
    #[inline]
    pub(crate) fn foreign(&self) -> u32 {
        self.foreign.load(Ordering::Relaxed)
    }

    /// What the draining predecessor last reported for this backend; 0 once it is gone.
    pub(crate) fn set_foreign(&self, n: u32) {
        if self.foreign() != n {
            self.foreign.store(n, Ordering::Relaxed);
        }
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

    /// Marks the backend removed by a reload: its streams end by `deadline_ms` (at least 1).
    pub(crate) fn set_removed(&self, deadline_ms: u64) {
        self.removed_deadline_ms
            .store(deadline_ms.max(1), Ordering::Relaxed);
    }

    /// A reload has it (back) in the table.
    pub(crate) fn clear_removed(&self) {
        if self.removed_deadline_ms.load(Ordering::Relaxed) != 0 {
            self.removed_deadline_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Removed by a reload and its drain timeout over at `now_ms`.
    pub(crate) fn drain_expired(&self, now_ms: u64) -> bool {
        let d = self.removed_deadline_ms.load(Ordering::Relaxed);
        d != 0 && now_ms >= d
    }

    /// Starts a slow-start ramp at `now_ms`.
    pub(crate) fn mark_up_at(&self, now_ms: u64) {
        self.up_since_ms.store(now_ms.max(1), Ordering::Relaxed);
    }

    /// A connect succeeded at `now_ms`. If the backend had been marked down, it is back up from
    /// then on, so the ramp starts; returns true then.
    pub(crate) fn record_success(&self, now_ms: u64) -> bool {
        let back = self.health.record_success();
        if back {
            self.mark_up_at(now_ms);
        }
        back
    }

    /// The active check passed enough times at `now_ms`: up. Coming back from down starts the
    /// slow-start ramp, and so does a first pass of a backend that a reload added (its ramp,
    /// started when the table was built, restarts from the moment it takes streams). Returns
    /// the status before.
    pub(crate) fn check_up_at(&self, now_ms: u64) -> CheckStatus {
        let before = self.check.set_up();
        let ramping = self.up_since_ms.load(Ordering::Relaxed) != 0;
        match before {
            CheckStatus::Down(_) => self.mark_up_at(now_ms),
            CheckStatus::Unknown if ramping => self.mark_up_at(now_ms),
            _ => {}
        }
        before
    }

    /// The active check failed enough times: down for `why`; with `reset`, live streams are
    /// to be reset by their workers. Returns the status before.
    pub(crate) fn check_down(&self, why: CheckFailure, reset: bool) -> CheckStatus {
        let before = self.check.set_down(why);
        if reset {
            self.check.request_reset();
        }
        before
    }

    /// Slow-start share of the configured weight, in per mille (100..=1000), for a pool whose
    /// `slow_start` is `slow_start_ms` (0 = off: always 1000). A backend marked down and not
    /// yet confirmed back by a successful connect (half-open) stays at the ramp's start.
    #[inline]
    pub(crate) fn ramp_permille(&self, slow_start_ms: u64, now_ms: u64) -> u64 {
        if slow_start_ms == 0 {
            return slow_start::FULL;
        }
        if self.health.down_until_ms() != 0 {
            return slow_start::START;
        }
        let up = self.up_since_ms.load(Ordering::Relaxed);
        if up == 0 {
            return slow_start::FULL;
        }
        let elapsed = now_ms.saturating_sub(up);
        if elapsed >= slow_start_ms {
            // A one-time write per ramp; losing the race to a new `mark_up_at` keeps the new one.
            let _ = self
                .up_since_ms
                .compare_exchange(up, 0, Ordering::Relaxed, Ordering::Relaxed);
            return slow_start::FULL;
        }
        slow_start::permille(elapsed, slow_start_ms)
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
    fn foreign_streams_weigh_in_picks_but_never_in_the_own_count() {
        let s = BackendState::default();
        assert!(s.try_acquire(0));
        s.set_foreign(5);
        assert_eq!((s.active(), s.foreign(), s.load()), (1, 5, 6));
        assert!(s.try_acquire(2), "the exact limit is on our own count");
        s.set_foreign(0);
        assert_eq!(s.load(), 2);
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
    fn ramp_follows_up_since_and_clears_when_done() {
        let s = BackendState::default();
        assert_eq!(s.ramp_permille(10_000, 5), 1000, "never marked up");
        s.mark_up_at(1000);
        assert_eq!(s.ramp_permille(0, 1000), 1000, "slow start off");
        assert_eq!(s.ramp_permille(10_000, 1000), 100);
        assert_eq!(s.ramp_permille(10_000, 6000), 550);
        assert_eq!(s.ramp_permille(10_000, 11_000), 1000);
        assert_eq!(
            s.up_since_ms.load(Ordering::Relaxed),
            0,
            "cleared once done"
        );
        assert_eq!(s.ramp_permille(10_000, 1000), 1000);
    }

    #[test]
    fn success_after_down_starts_the_ramp() {
        let s = BackendState::default();
        s.health.set_policy(&crate::balance::HealthPolicy {
            fail_threshold: 1,
            ..Default::default()
        });
        s.record_success(0);
        assert_eq!(
            s.up_since_ms.load(Ordering::Relaxed),
            0,
            "no ramp while healthy"
        );
        assert!(s.health.record_failure_at(0));
        assert_eq!(s.ramp_permille(10_000, 5000), 100);
        s.record_success(5000);
        assert_eq!(s.ramp_permille(10_000, 5000), 100);
        assert_eq!(s.ramp_permille(10_000, 15_000), 1000);
    }

    #[test]
    fn check_up_ramps_after_down_and_after_a_reload_add() {
        let s = BackendState::default();
        assert_eq!(s.check_up_at(1000), CheckStatus::NotChecked);
        assert_eq!(
            s.ramp_permille(10_000, 1000),
            1000,
            "a first pass at start: no ramp"
        );
        s.check_down(CheckFailure::Status(503), false);
        assert_eq!(
            s.check_up_at(2000),
            CheckStatus::Down(CheckFailure::Status(503))
        );
        assert_eq!(s.ramp_permille(10_000, 2000), 100, "back from down: ramps");
        let added = BackendState::default();
        added.check.configure(Some(&crate::balance::ActiveCheck {
            probe: crate::balance::Probe::Tcp,
            interval: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_secs(1),
            rise: 1,
            fall: 1,
            on_down: crate::balance::OnDown::Keep,
            start: crate::balance::CheckStart::Unknown,
        }));
        added.mark_up_at(500); // what a reload build does
        assert_eq!(added.check_up_at(5000), CheckStatus::Unknown);
        assert_eq!(
            added.ramp_permille(10_000, 5000),
            100,
            "ramp restarts at the pass"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "below zero")]
    fn release_below_zero_is_caught_in_debug() {
        BackendState::default().release();
    }
}
