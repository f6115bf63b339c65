//! Behaviour of whole tables across strategies: shares by weight, tiers and why a pick
//! failed, slow start, least-latency reactions and consistent hashing. Time is passed in (every
//! pick and report carries it) and randomness seeded per test, so every run sees the same picks.

mod checks;
mod hash;
mod least_latency;
mod shares;
mod slow_start;
mod tiers;

use crate::balance::strategy::test_support::{backend_specs, pick_at, pool, table_spec};
use crate::balance::{PoolSpec, Registry, StrategyKind, Table, TableSpec};

/// Every strategy, for tests that must hold for all.
pub(super) const ALL: [StrategyKind; 6] = [
    StrategyKind::LeastConnections,
    StrategyKind::RoundRobin,
    StrategyKind::PowerOfTwo,
    StrategyKind::LeastLatency,
    StrategyKind::Random,
    StrategyKind::Hash,
];

/// A one-pool spec of `kind` with (weight, max_connections, tier) per backend.
pub(super) fn spec3(kind: StrategyKind, backends: &[(u32, u32, u32)]) -> TableSpec {
    table_spec(pool(kind, backend_specs(backends)))
}

/// A one-pool spec from a pool tweaked by `f`.
pub(super) fn spec_with(
    kind: StrategyKind,
    backends: &[(u32, u32, u32)],
    f: impl FnOnce(&mut PoolSpec),
) -> TableSpec {
    let mut p = pool(kind, backend_specs(backends));
    f(&mut p);
    table_spec(p)
}

/// Picks (released at once) at `now_ms` from `table`; hit counts per backend.
pub(super) fn hits(table: &Table, picks: usize, now_ms: u64) -> Vec<u32> {
    let mut hits = vec![0u32; table.pool(0).map_or(0, |p| p.len())];
    for _ in 0..picks {
        let pick = pick_at(table, &[], now_ms).expect("a backend has room");
        hits[pick.backend] += 1;
    }
    hits
}

pub(super) fn build(spec: &TableSpec) -> (Registry, Table) {
    let registry = Registry::new();
    let table = Table::build_at(spec, &registry, 0);
    (registry, table)
}
