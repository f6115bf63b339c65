//! The engine's half of a config reload: publishing a new [`Policy`] to the workers (they
//! adopt it at their next loop turn, without a lock). The table is swapped by the caller
//! (with operator overrides applied) before the policy, so a new pool's index is in the table
//! by the time a listener sends clients to it.
//!
//! A reload keeps every pool's index (the caller lays the new config out that way), so live
//! connections, queued clients and per-pool counters keep pointing at the same pool. Must
//! never change what a live connection was started with.

use std::sync::Arc;

use arc_swap::ArcSwap;

use std::net::SocketAddr;

use crate::config::{Config, Listener};

use super::admit::Admission;
use super::bind;
use super::mailbox::{Mail, Mailbox};
use super::observe::ListenerBook;
use super::policy::Policy;
use super::queue::QueueShared;
use super::uring::Waker;
use super::worker::{Accept, WorkerListener};
use super::EngineError;

/// Pools a reload may add beyond those the server started with: the per-pool queue counters
/// are allocated once, at start.
pub const POOL_HEADROOM: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{pools} pools (with the removed ones kept in place) exceed the {capacity} this process can hold; restart ringlb to apply this config")]
    TooManyPools { pools: usize, capacity: usize },
    #[error("{listeners} listeners (with the removed ones kept in place) exceed the {capacity} this process can hold; restart ringlb to apply this config")]
    TooManyListeners { listeners: usize, capacity: usize },
    #[error(transparent)]
    Listen(#[from] EngineError),
}

/// A listener's sockets, bound, not yet accepting (see [`EngineReload::bind_listener`]).
pub struct BoundListener {
    pub addr: SocketAddr,
    fds: Vec<std::os::fd::OwnedFd>,
}

/// Cheap to clone; held by the control plane.
#[derive(Clone)]
pub struct EngineReload {
    pub(super) policy: Arc<ArcSwap<Policy>>,
    pub(super) queues: Arc<QueueShared>,
    pub(super) admission: Arc<Admission>,
    pub(super) mailbox: Arc<Mailbox>,
    pub(super) wakers: Vec<Waker>,
    pub(super) workers: usize,
    pub(super) listeners: Arc<ListenerBook>,
}

impl EngineReload {
    /// Pools the running engine can hold.
    pub fn pool_capacity(&self) -> usize {
        self.queues.waiting.len()
    }

    /// Refuses a config with more pools or listeners than the engine has room for.
    pub fn check(&self, config: &Config) -> Result<(), ReloadError> {
        let capacity = self.pool_capacity();
        if config.pools.len() > capacity {
            return Err(ReloadError::TooManyPools {
                pools: config.pools.len(),
                capacity,
            });
        }
        let capacity = self.admission.capacity();
        if config.listeners.len() > capacity {
            return Err(ReloadError::TooManyListeners {
                listeners: config.listeners.len(),
                capacity,
            });
        }
        Ok(())
    }

    /// Binds listener `l` on every worker's behalf, probing a fixed port first like a start
    /// does. Nothing accepts on the sockets until [`Self::start_listener`]; dropping the
    /// result closes them (a reload that fails later changes nothing).
    pub fn bind_listener(&self, l: &Listener) -> Result<BoundListener, ReloadError> {
        let (addr, fds) = bind::listener_sockets(l, self.workers, true)?;
        Ok(BoundListener { addr, fds })
    }

    /// Hands the sockets of listener `index` (of the running config) to the workers; its
    /// clients go to the pool the published policy says (publish it first: [`Self::apply`]).
    pub fn start_listener(
        &self,
        index: usize,
        l: &Listener,
        bound: BoundListener,
    ) -> Result<SocketAddr, ReloadError> {
        if !self.admission.set_listener(index, l.max_connections) {
            return Err(ReloadError::TooManyListeners {
                listeners: index + 1,
                capacity: self.admission.capacity(),
            });
        }
        for (worker, fd) in bound.fds.into_iter().enumerate() {
            let wl = WorkerListener {
                fd: Some(fd),
                pool: l.pool,
                index,
                accept: Accept::Off,
                retry_at: 0,
                closing: false,
                handed_over: false,
            };
            self.mailbox.post(worker, Mail::Listen(wl));
        }
        self.wake();
        self.listeners.add(&l.name, bound.addr);
        Ok(bound.addr)
    }

    /// Every worker stops accepting on listener `index`: what waits in its backlog is taken
    /// and served, then its sockets close. Its live streams go on.
    pub fn remove_listener(&self, index: usize, name: &str) {
        self.listeners.remove(name);
        for worker in 0..self.workers {
            self.mailbox.post(worker, Mail::Close(index));
        }
        self.wake();
    }

    /// A listener's own `max_connections` (applies live).
    pub fn set_listener_limit(&self, index: usize, limit: u32) {
        self.admission.set_listener(index, limit);
        self.wake();
    }

    fn wake(&self) {
        for w in &self.wakers {
            w.wake();
        }
    }

    /// Publishes the policy of `config` (already [`check`](Self::check)ed, its pools at their
    /// old indexes); workers follow it from their next loop turn.
    pub fn apply(&self, config: &Config) -> Result<(), ReloadError> {
        self.check(config)?;
        self.policy.store(Arc::new(Policy::from_config(config)));
        // Wake the workers: a listener's new pool, new timeouts, from their next turn.
        self.wake();
        Ok(())
    }
}
