//! One backend as a table snapshot sees it: its address and limits from the config (immutable)
//! and a handle to its live, shared state. Checks here run in the pick loop, so they must stay
//! a few atomic loads: no lock, no allocation, no clock read for a healthy backend.

use std::net::SocketAddr;
use std::sync::Arc;

use super::health::LazyNow;
use super::state::BackendState;

#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    /// 0 = unlimited.
    pub(crate) max_connections: u32,
    pub(crate) state: Arc<BackendState>,
}

impl Backend {
    /// True if `active` connections leave no room under `max_connections`.
    #[inline]
    pub(crate) fn is_full(&self, active: u32) -> bool {
        self.max_connections != 0 && active >= self.max_connections
    }

    /// May take a new connection now: weighted in, not full, not down. A racing pick may
    /// still fill it before `try_acquire`, which is the check that counts.
    #[inline]
    pub(crate) fn is_eligible(&self, now: &mut LazyNow) -> bool {
        self.weight != 0 && !self.is_full(self.state.active()) && !now.is_down(&self.state.health)
    }

    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        self.state.try_acquire(self.max_connections)
    }
}
