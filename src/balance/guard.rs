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
    /// The connect succeeded (the stream reached the backend).
    connected: Cell<bool>,
    /// The backend reset the stream before its first byte.
    early_closed: Cell<bool>,
}

impl ActiveGuard {
    /// Only the table creates guards, right after a successful `try_acquire`.
    pub(crate) fn new(state: SharedState, addr: SocketAddr) -> Self {
        Self {
            reset_generation: state.check.reset_generation(),
            state,
            addr,
            connected: Cell::new(false),
            early_closed: Cell::new(false),
        }
    }

    /// The backend this slot was taken on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connect to the backend succeeded at `now_ms`: reset its passive health. If it had
    /// been marked down it is back up, and slow start (if the pool has it) ramps from then.
    pub fn connect_succeeded(&self, now_ms: u64) {
        self.connected.set(true);
        if self.state.record_success(now_ms) {
            tracing::info!(pool = self.state.pool(), backend = %self.addr, "backend up: passive health cleared (a connect succeeded)");
        }
    }

    /// The backend reset this stream at `now_ms` before sending its first byte. With the
    /// pool's `passive_early_close` that is a passive failure; returns true if it just marked
    /// the backend down.
    pub fn early_close(&self, now_ms: u64) -> bool {
        self.early_closed.set(true);
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
        self.early_closed.set(true);
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
        if self.connected.get() && !self.early_closed.get() {
            self.state.health.record_stream_served();
        }
        self.state.release();
    }
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
    fn guard_is_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<ActiveGuard>();
    }
}
