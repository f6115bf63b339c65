//! The proof that a connection slot was taken on a backend. Dropping it gives the slot back,
//! exactly once; it can never be cloned. It keeps the backend's state alive on its own, so a
//! reload that removes the backend cannot lose the release. Through it the engine reports what
//! it learned about the backend: connect outcomes (passive health, slow start) and latencies,
//! each with the time it happened (`clock::now_ms()` milliseconds: the caller owns the clock).

use std::cell::Cell;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::counters::{CloseReason, ConnectFailure};
use super::latency::Kind;
use super::state::SharedState;

/// One active connection counted on one backend, from pick until the connection ends.
pub struct ActiveGuard {
    state: SharedState,
    addr: SocketAddr,
    /// The backend's reset generation when the stream was counted (`on_down = "reset"`).
    reset_generation: u32,
    /// `CONNECTED`, `EARLY_CLOSED` and `QUIET`, in one byte: with `down_at` they fit the
    /// padding the address and generation leave, so a connection slot does not grow.
    flags: Cell<u8>,
    /// When the backend last sent bytes, in [`TICK_MS`] ticks of `clock::now_ms()`, wrapping.
    /// Only kept for pools that count idle streams apart.
    down_at: Cell<u16>,
}

/// The connect succeeded (the stream reached the backend).
const CONNECTED: u8 = 1;
/// The backend reset the stream before its first byte.
const EARLY_CLOSED: u8 = 2;
/// Counted idle on the backend (`BackendState::quiet`).
const QUIET: u8 = 4;

/// Resolution of `down_at`: 64 ms, so 16 bits wrap after 70 minutes. A stream is checked for
/// quiet at most `idle_after` after its last byte (its relaying deadline), and `idle_after` is
/// capped far below the wrap, so elapsed time computed with wrapping arithmetic is exact to a
/// tick.
pub const TICK_MS: u64 = 64;
/// The largest `idle_after` the wrap allows with margin (the config caps it lower).
pub const MAX_IDLE_AFTER_MS: u64 = 3_600_000;

impl ActiveGuard {
    /// Only the table creates guards, right after a successful `try_acquire`.
    pub(crate) fn new(state: SharedState, addr: SocketAddr) -> Self {
        Self {
            reset_generation: state.check.reset_generation(),
            state,
            addr,
            flags: Cell::new(0),
            down_at: Cell::new(0),
        }
    }

    fn flag(&self, bit: u8) -> bool {
        self.flags.get() & bit != 0
    }

    fn set_flag(&self, bit: u8, on: bool) {
        let f = self.flags.get();
        self.flags.set(if on { f | bit } else { f & !bit });
    }

    /// The backend sent bytes at `now_ms`: the stream is busy (generating). A stream counted
    /// idle is counted busy again; returns true then (the caller arranges to look again after
    /// `idle_after`). A store and a branch on the common path.
    #[inline]
    pub fn backend_sent(&self, now_ms: u64) -> bool {
        self.down_at.set(ticks(now_ms));
        if self.flag(QUIET) {
            self.set_flag(QUIET, false);
            self.state.set_quiet(false);
            return true;
        }
        false
    }

    /// Counted idle on the backend.
    pub fn is_quiet(&self) -> bool {
        self.flag(QUIET)
    }

    /// For a busy stream, when it turns idle if the backend stays silent: `idle_after_ms`
    /// after its last bytes (or after the stream started, if it sent none); None once idle.
    pub fn quiet_due(&self, now_ms: u64, idle_after_ms: u64) -> Option<u64> {
        if self.flag(QUIET) {
            return None;
        }
        let since = u64::from(ticks(now_ms).wrapping_sub(self.down_at.get())) * TICK_MS;
        Some((now_ms + idle_after_ms).saturating_sub(since))
    }

    /// Counts the stream idle if the backend has been silent for `idle_after_ms` at `now_ms`;
    /// returns true if it just did.
    pub fn mark_quiet_if_due(&self, now_ms: u64, idle_after_ms: u64) -> bool {
        match self.quiet_due(now_ms, idle_after_ms) {
            Some(due) if now_ms >= due => {
                self.set_flag(QUIET, true);
                self.state.set_quiet(true);
                true
            }
            _ => false,
        }
    }

    /// The backend this slot was taken on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connect to the backend succeeded at `now_ms`: reset its passive health. If it had
    /// been marked down it is back up, and slow start (if the pool has it) ramps from then.
    pub fn connect_succeeded(&self, now_ms: u64) {
        self.set_flag(CONNECTED, true);
        if self.state.record_success(now_ms) {
            tracing::info!(pool = self.state.pool(), backend = %self.addr, "backend up: passive health cleared (a connect succeeded)");
        }
    }

    /// The backend reset this stream at `now_ms` before sending its first byte. With the
    /// pool's `passive_early_close` that is a passive failure; returns true if it just marked
    /// the backend down.
    pub fn early_close(&self, now_ms: u64) -> bool {
        self.set_flag(EARLY_CLOSED, true);
        let marked = self.state.health.record_early_close_at(now_ms);
        if marked {
            tracing::warn!(pool = self.state.pool(), backend = %self.addr, reason = "early close", "backend down: passive health (its streams end in resets before a byte)");
        }
        marked
    }

    /// The backend sent nothing within the pool's `first_byte_timeout` of the request: a
    /// passive failure (as a failed connect is), and the stream does not count as served.
    /// Returns true if it just marked the backend down.
    pub fn first_byte_timed_out(&self, now_ms: u64) -> bool {
        self.set_flag(EARLY_CLOSED, true);
        let marked = self.state.health.record_failure_at(now_ms);
        if marked {
            tracing::warn!(pool = self.state.pool(), backend = %self.addr, reason = "first byte timeout", "backend down: passive health (no answer within first_byte_timeout)");
        }
        marked
    }

    /// True if an active check took the backend down with `on_down = "reset"` after this
    /// stream was counted: the worker should reset it. One atomic load.
    #[inline]
    pub fn reset_requested(&self) -> bool {
        self.state.check.reset_generation() != self.reset_generation
    }

    /// The connect took `d`, measured at `now_ms`: feeds the backend's connect-time peak EWMA
    /// (every strategy records it; `least_latency` picks by it).
    pub fn observe_connect(&self, d: Duration, now_ms: u64) {
        self.state.latency.observe_at(Kind::Connect, d, now_ms);
        self.state.counters.connect_time.record(d);
    }

    /// The backend's first byte came `d` after the first request byte went out, measured at
    /// `now_ms`: feeds its first-byte peak EWMA.
    pub fn observe_first_byte(&self, d: Duration, now_ms: u64) {
        self.state.latency.observe_at(Kind::FirstByte, d, now_ms);
        self.state.counters.first_byte.record(d);
    }

    /// `n` bytes were relayed to the backend (`to_backend`) or from it.
    #[inline]
    pub fn add_bytes(&self, to_backend: bool, n: u64) {
        self.state.counters.add_bytes(to_backend, n);
    }

    /// A connect on this slot failed this way (for metrics; [`Self::connect_failed`] is
    /// what passive health learns from).
    pub fn record_connect_failure(&self, kind: ConnectFailure) {
        self.state.counters.connect_failed(kind);
    }

    /// The backend was removed by a reload and its pool's `drain_timeout` is over at `now_ms`:
    /// the stream on this slot is to be cut.
    pub fn drain_expired(&self, now_ms: u64) -> bool {
        self.state.drain_expired(now_ms)
    }

    /// The stream on this slot ended for `reason`.
    pub fn record_close(&self, reason: CloseReason) {
        self.state.counters.closed(reason);
    }

    /// The connect to the backend failed at `now_ms` (refused, reset, timed out). Returns true
    /// if this failure just marked the backend down.
    pub fn connect_failed(&self, now_ms: u64) -> bool {
        let marked = self.state.health.record_failure_at(now_ms);
        if marked {
            tracing::warn!(pool = self.state.pool(), backend = %self.addr, reason = "connect failed", "backend down: passive health (connect failures in a row)");
        }
        marked
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.flag(CONNECTED) && !self.flag(EARLY_CLOSED) {
            self.state.health.record_stream_served();
        }
        if self.flag(QUIET) {
            self.state.set_quiet(false);
        }
        self.state.release();
    }
}

/// `now_ms` in `TICK_MS` ticks, wrapping at 16 bits.
fn ticks(now_ms: u64) -> u16 {
    (now_ms / TICK_MS) as u16
}

impl fmt::Debug for ActiveGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveGuard")
            .field("addr", &self.addr)
            .field("active", &self.state.active())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drop_releases_exactly_once() {
        let state = SharedState::default();
        assert!(state.try_acquire(0));
        assert!(state.try_acquire(0));
        let a = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        let b = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(state.active(), 2);
        drop(a);
        assert_eq!(state.active(), 1);
        let moved = b; // moving must not release
        assert_eq!(state.active(), 1);
        drop(moved);
        assert_eq!(state.active(), 0);
        assert_eq!(
            Arc::strong_count(&state),
            1,
            "guards hold no extra references"
        );
    }

    #[test]
    fn reset_is_requested_only_for_streams_counted_before() {
        let state = SharedState::default();
        assert!(state.try_acquire(0) && state.try_acquire(0));
        let before = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        assert!(!before.reset_requested());
        state.check.request_reset();
        let after = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        assert!(before.reset_requested());
        assert!(!after.reset_requested());
    }

    #[test]
    fn a_silent_stream_turns_idle_after_idle_after_and_busy_on_its_next_bytes() {
        let state = SharedState::default();
        assert!(state.try_acquire(0));
        let g = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        g.backend_sent(10_000);
        assert_eq!(g.quiet_due(10_000, 2_000), Some(12_000));
        assert!(!g.mark_quiet_if_due(11_000, 2_000));
        assert!(g.mark_quiet_if_due(12_100, 2_000));
        assert!(!g.mark_quiet_if_due(13_000, 2_000), "counted once");
        assert_eq!((state.active(), state.quiet(), state.busy()), (1, 1, 0));
        assert_eq!(g.quiet_due(13_000, 2_000), None);
        assert!(g.backend_sent(14_000), "busy again");
        assert!(!g.backend_sent(14_010));
        assert_eq!((state.quiet(), state.busy()), (0, 1));
        assert!(g.mark_quiet_if_due(16_100, 2_000));
        drop(g);
        assert_eq!(
            (state.active(), state.quiet()),
            (0, 0),
            "drop gives both back"
        );
    }

    #[test]
    fn idle_time_survives_the_tick_counter_wrapping() {
        let state = SharedState::default();
        assert!(state.try_acquire(0));
        let g = ActiveGuard::new(state.clone(), "127.0.0.1:1".parse().unwrap());
        let wrap = TICK_MS << 16;
        let t = 5 * wrap - 500; // the 16-bit tick wraps between the last byte and the check
        g.backend_sent(t);
        assert!(!g.mark_quiet_if_due(t + 1_000, 2_000));
        assert!(g.mark_quiet_if_due(t + 2_100, 2_000));
    }

    #[test]
    fn the_guard_fits_in_the_space_it_had() {
        assert!(std::mem::size_of::<ActiveGuard>() <= 48);
    }

    #[test]
    fn guard_is_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<ActiveGuard>();
    }
}
