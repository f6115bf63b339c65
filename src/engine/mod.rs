//! The data plane: thread-per-core workers, each with one I/O driver (an io_uring ring, or
//! epoll where io_uring is blocked: see `driver` and `io_choice`), its own SO_REUSEPORT
//! listening sockets and a slab of connections, relaying bytes unchanged between clients and
//! the backends the shared table picks.
//!
//! [`Server::start`] sets everything up and returns once every worker's ring is ready (or the
//! first reason it could not be). The engine must never take a lock on the per-connection path
//! and never hold `unsafe` outside the drivers (`uring`, `epoll`).

mod accept;
mod access;
mod admit;
mod backlog;
mod bind;
mod conn;
mod connect;
mod deadlines;
mod drain;
mod driver;
mod epoll;
mod handover;
mod io_choice;
mod limits;
mod mailbox;
mod observe;
mod peek;
mod policy;
mod queue;
mod ratelimit;
mod relay;
mod reload;
mod replay;
mod server;
mod socket;
mod stats;
mod stuck;
mod supervise;
mod time;
mod timer;
mod token;
mod uring;
mod worker;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use bind::{bind_reason, try_bind, BindCheck, StartOptions};
pub use epoll::EpollError;
pub use handover::{EngineHandover, InheritedListener, LendError, LentListener};
pub use io_choice::{choose as choose_io, IoChoice, IoDriver, IO_ENV};
pub use limits::raise_nofile;
pub use observe::{Observer, WaitSnapshot, WAIT_BUCKETS_US};
pub use policy::{table_spec, Policy, PoolPolicy};
pub use reload::{BoundListener, EngineReload, ReloadError, POOL_HEADROOM};
pub use server::Server;
pub use stats::StatsSnapshot;
pub use supervise::Stopper;
pub use time::Clock;
pub use uring::{UringError, SPILL_BLOCK};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Uring(#[from] UringError),
    #[error("{0}")]
    Epoll(#[from] EpollError),
    #[error("{IO_ENV}={0:?} is not an I/O driver: use \"auto\", \"io_uring\" or \"epoll\"")]
    IoOverride(String),
    /// A listener's address cannot be bound (in use, no permission, not this host's): nothing
    /// was started.
    #[error("listener {name:?}: cannot listen on {addr}: {}", bind_reason(*addr, error))]
    Listen {
        name: String,
        addr: SocketAddr,
        /// Not a `source()`: its text is already in the message, which a printer of the
        /// source chain would repeat.
        error: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("worker {0} panicked")]
    WorkerPanicked(usize),
    #[error("worker {0} exited before it was ready")]
    WorkerLost(usize),
}

impl From<driver::DriverError> for EngineError {
    fn from(e: driver::DriverError) -> EngineError {
        match e {
            driver::DriverError::Uring(e) => EngineError::Uring(e),
            driver::DriverError::Epoll(e) => EngineError::Epoll(e),
        }
    }
}

impl EngineError {
    /// Whether the error is a listener address that could not be bound: a problem of the
    /// config or of what else runs on the host, not of ringlb.
    pub fn is_listen(&self) -> bool {
        matches!(self, EngineError::Listen { .. })
    }
}
