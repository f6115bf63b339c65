//! One backend as a table snapshot sees it: its address and limits from the config (immutable)
//! and a handle to its live, shared state; and [`PickCtx`], what one pick knows besides the
//! backends. Checks here run in the pick loop, so they must stay a few atomic loads: no lock,
//! no allocation, no clock read (the time comes with the request).

use std::net::SocketAddr;

use super::slow_start;
use super::spec::CountMode;
use super::state::SharedState;
use super::strategy::rng;

#[derive(Debug, Clone)]
pub(crate) struct Backend {
    /// Position in the pool (what `Pick::backend` and `exclude` speak of); strategies work on
    /// one tier's slice, where the position differs.
    pub(crate) index: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    /// 0 = unlimited.
    pub(crate) max_connections: u32,
    pub(crate) tier: u32,
    /// Drained by an operator (its `weight` is then 0); kept for snapshots.
    pub(crate) drain: bool,
    pub(crate) state: SharedState,
}

impl Backend {
    /// True if `active` connections leave no room under `max_connections`.
    #[inline]
    pub(crate) fn is_full(&self, active: u32) -> bool {
        self.max_connections != 0 && active >= self.max_connections
    }

    /// Takes a slot if the backend is weighted in, not excluded, has room and is up. The slot
    /// is taken before the health check on purpose: the RMW brings the cache line in
    /// exclusive, and the deadline next to the count is then read for free, where a read first
    /// would fetch the line twice under contention. A down backend gives the slot straight back.
    #[inline]
    pub(crate) fn try_take(&self, ctx: &PickCtx) -> bool {
        if self.weight == 0 || ctx.excluded(self) || !self.try_acquire() {
            return false;
        }
        if ctx.is_down(self) {
            self.state.release();
            return false;
        }
        true
    }

    /// What the backend's streams count as under `count`, in thousandths of a stream: every
    /// stream 1000, or an idle one `idle_permille` under `count = "generating"`.
    #[inline]
    pub(crate) fn counted_milli(&self, count: CountMode) -> u64 {
        let load = u64::from(self.state.load());
        match count {
            CountMode::Streams => load * 1000,
            CountMode::Generating { idle_permille } => {
                let quiet = u64::from(self.state.quiet()).min(load);
                (load - quiet) * 1000 + quiet * u64::from(idle_permille)
            }
        }
    }

    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        self.state.try_acquire(self.max_connections)
    }
}

/// The inputs of one pick other than the backends.
pub(crate) struct PickCtx<'a> {
    /// Pool positions already tried for this client.
    pub(crate) exclude: &'a [usize],
    /// The request's time, `clock::now_ms()` milliseconds.
    pub(crate) now_ms: u64,
    /// Hash of the client key, for `hash`; None when the caller gave no client address.
    pub(crate) key: Option<u64>,
    /// The pool's slow start in ms; 0 = off.
    pub(crate) slow_start_ms: u64,
}

impl PickCtx<'_> {
    #[inline]
    pub(crate) fn excluded(&self, backend: &Backend) -> bool {
        self.exclude.contains(&backend.index)
    }

    /// Down by its active check (or not passed one yet), marked down by passive health and
    /// its backoff not over at the request's time, or its engine stalled.
    #[inline]
    pub(crate) fn is_down(&self, backend: &Backend) -> bool {
        backend.state.check.blocks()
            || backend.state.health.is_down_at(self.now_ms)
            || backend.state.engine.stalled()
    }

    /// Weighted in, not excluded and not down (it may still be full).
    #[inline]
    pub(crate) fn is_candidate(&self, backend: &Backend) -> bool {
        backend.weight != 0 && !self.excluded(backend) && !self.is_down(backend)
    }

    /// Weight times the slow-start ramp in per mille: at least 100 for a weighted-in backend.
    #[inline]
    pub(crate) fn effective_weight(&self, backend: &Backend) -> u64 {
        u64::from(backend.weight) * self.permille(backend)
    }

    #[inline]
    pub(crate) fn permille(&self, backend: &Backend) -> u64 {
        backend.state.ramp_permille(self.slow_start_ms, self.now_ms)
    }

    /// For strategies that draw backends: true if a drawn backend takes its turn. Always for a
    /// backend at full weight; with probability permille/1000 while it ramps up.
    #[inline]
    pub(crate) fn ramp_admits(&self, backend: &Backend) -> bool {
        let permille = self.permille(backend);
        permille >= slow_start::FULL || rng::below(slow_start::FULL) < permille
    }
}
