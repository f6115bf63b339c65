//! The backend table shared by all worker threads: which backend gets the next client.
//!
//! Control plane: [`Table::build`] turns a [`TableSpec`] into an immutable [`Table`], taking
//! each backend's live state (active count, passive health) from a [`Registry`] so that a
//! reload keeps them; [`SharedTable::store`] swaps the new table in whole.
//! Data plane: each worker calls [`SharedTable::load`] then [`Table::pick`], which counts the
//! connection at once and returns an [`ActiveGuard`] that gives the count back on drop.
//!
//! The pick path must never lock, allocate or read the clock for healthy backends, and a
//! count must never be released twice, lost, or pushed past `max_connections`.
//! Strategies live in `strategy/`, one file each.

mod backend;
mod guard;
mod health;
mod registry;
mod shared;
mod snapshot;
mod spec;
mod state;
mod strategy;
mod table;

pub use guard::ActiveGuard;
pub use registry::Registry;
pub use shared::{SharedTable, TableCache};
pub use snapshot::{BackendSnapshot, PoolSnapshot};
pub use spec::{
    BackendSpec, HealthPolicy, PoolSpec, StrategyKind, TableSpec, DEFAULT_BACKOFF_MAX,
    DEFAULT_BACKOFF_MIN, DEFAULT_FAIL_THRESHOLD,
};
pub use table::{Pick, PoolTable, Table};
