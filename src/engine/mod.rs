//! The data plane: thread-per-core workers, each with one io_uring ring, its own SO_REUSEPORT
//! listening sockets and a slab of connections, relaying bytes unchanged between clients and
//! the backends the shared table picks.
//!
//! [`Server::start`] sets everything up and returns once every worker's ring is ready (or the
//! first reason it could not be). The engine must never take a lock on the per-connection path
//! and never hold `unsafe` outside `uring`.

mod access;
mod admit;
mod backlog;
mod conn;
mod connect;
mod deadlines;
mod limits;
mod observe;
mod policy;
mod queue;
mod relay;
mod server;
mod socket;
mod stats;
mod time;
mod timer;
mod token;
mod uring;
mod worker;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use limits::raise_nofile;
pub use observe::{Observer, WaitSnapshot, WAIT_BUCKETS_US};
pub use policy::{table_spec, Policy, PoolPolicy};
pub use server::{Server, Stopper};
pub use stats::StatsSnapshot;
pub use time::Clock;
pub use uring::{UringError, SPILL_BLOCK};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Uring(#[from] UringError),
    #[error("listener {name:?}: cannot listen on {addr}: {source}")]
    Listen {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("worker {0} panicked")]
    WorkerPanicked(usize),
    #[error("worker {0} exited before it was ready")]
    WorkerLost(usize),
}
