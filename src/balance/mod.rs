//! The backend table shared by all worker threads: which backend gets the next client.
//!
//! Control plane: [`Table::build`] turns a [`TableSpec`] into an immutable [`Table`], taking
//! each backend's live state (active count, passive health) from a [`Registry`] so that a
//! reload keeps them; [`SharedTable::store`] swaps the new table in whole.
//! Data plane: each worker calls [`SharedTable::load`] then [`Table::pick_for`], which picks in
//! the lowest tier that has room, counts the connection at once and returns an
//! [`ActiveGuard`] that gives the count back on drop (and takes latency samples); or says why
//! it could not ([`NoPick`]: everything full, so worth queueing, or nothing available).
//!
//! The pick path must never lock or allocate, and must not read the clock for healthy backends
//! unless the strategy needs time (least_latency) or a backend is ramping up (slow start). A
//! count must never be released twice, lost, or pushed past `max_connections`.
//! Strategies live in `strategy/`, one file each.

mod backend;
mod guard;
mod health;
mod latency;
mod pool;
mod registry;
mod shared;
mod slow_start;
mod snapshot;
mod spec;
mod state;
mod strategy;
mod table;

pub use guard::ActiveGuard;
pub use pool::{NoPick, Pick, PoolTable};
pub use registry::Registry;
pub use shared::{SharedTable, TableCache};
pub use snapshot::{BackendSnapshot, PoolSnapshot};
pub use spec::{
    BackendSpec, HashKey, HealthPolicy, PoolSpec, StrategyKind, TableSpec, DEFAULT_BACKOFF_MAX,
    DEFAULT_BACKOFF_MIN, DEFAULT_FAIL_THRESHOLD,
};
pub use strategy::rng::seed_thread_rng;
pub use table::Table;

#[cfg(test)]
mod tests;
