//! One backend as a table snapshot sees it: its address and limits from the config (immutable)
//! and a handle to its live, shared state. Checks here run in the pick loop, so they must stay
//! a few atomic loads: no lock, no allocation, no clock read for a healthy backend.

use std::net::SocketAddr;

use super::health::LazyNow;
use super::state::SharedState;

#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    /// 0 = unlimited.
    pub(crate) max_connections: u32,
    pub(crate) state: SharedState,
}

impl Backend {
    /// True if `active` connections leave no room under `max_connections`.
    #[inline]
    pub(crate) fn is_full(&self, active: u32) -> bool {
        self.max_connections != 0 && active >= self.max_connections
    }

    /// Takes a slot if the backend is weighted in, has room and is up. The slot is taken
    /// before the health check on purpose: the RMW brings the cache line in exclusive, and the
    /// deadline next to the count is then read for free, where a read first would fetch the
    /// line twice under contention. A down backend just gives the slot straight back.
    #[inline]
    pub(crate) fn try_take(&self, now: &mut LazyNow) -> bool {
        if self.weight == 0 || !self.try_acquire() {
            return false;
        }
        if now.is_down(&self.state.health) {
            self.state.release();
            return false;
        }
        true
    }

    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        self.state.try_acquire(self.max_connections)
    }
}
