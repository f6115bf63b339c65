//! The backend table shared by all worker threads: which backend gets the next client.
//!
//! Control plane: [`Table::build`] turns a [`TableSpec`] into an immutable [`Table`], taking
//! each backend's live state (active count, passive health) from a [`Registry`] so that a
//! reload keeps them; [`SharedTable::store`] swaps the new table in whole.
//! Data plane: each worker calls [`SharedTable::load`] then [`Table::pick`] with a
//! [`PickRequest`] (pool, backends already tried, client address, time), which picks in the
//! lowest tier that has room, counts the connection at once and returns an [`ActiveGuard`]
//! that gives the count back on drop (and takes connect outcomes and latency samples, each
//! with its time); or says why it could not ([`NoPick`]: everything full, so worth queueing,
//! or nothing available).
//!
//! The caller owns the clock: every time is passed in, in `clock::now_ms()` milliseconds (the
//! engine passes its loop-turn time, read once per turn anyway; see `request.rs` for why a
//! plain value). The pick path must never lock, allocate or read the clock. A count must never
//! be released twice, lost, or pushed past `max_connections`.
//! Active health checks run on the control plane (`crate::health`) and publish their result
//! in each backend's shared state (`check_state.rs`); picks skip a backend the check says is
//! down or has not passed yet, with one atomic load.
//! Strategies live in `strategy/`, one file each.

mod backend;
mod check_state;
mod counters;
mod engine_load;
mod engine_spec;
mod guard;
mod health;
mod latency;
mod pool;
mod registry;
mod request;
mod shared;
mod slow_start;
mod snapshot;
mod spec;
mod state;
mod strategy;
mod table;

pub use check_state::{reset_epoch, CheckFailure, CheckStatus};
pub use counters::{
    CloseReason, ConnectFailure, CountersSnapshot, HistogramSnapshot, LatencyHistogram,
    LATENCY_BUCKETS_US,
};
pub use engine_load::EngineReading;
pub use engine_spec::{EngineFlavor, EngineNames, EngineScrape};
pub use guard::{ActiveGuard, MAX_IDLE_AFTER_MS};
pub use pool::PoolTable;
pub use registry::Registry;
pub use request::{NoPick, Pick, PickRequest};
pub use shared::{SharedTable, TableCache};
pub use snapshot::{BackendSnapshot, DownCause, HealthState, PoolSnapshot};
pub use spec::{
    ActiveCheck, BackendSpec, CheckStart, CountMode, HashKey, HealthPolicy, LeastLoadSpec, OnDown,
    PoolSpec, Probe, StrategyKind, TableSpec, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_FAIL_THRESHOLD,
};
pub(crate) use state::SharedState;
pub use strategy::rng::seed_thread_rng;
pub use table::Table;

#[cfg(test)]
mod tests;
