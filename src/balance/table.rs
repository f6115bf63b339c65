//! The immutable backend table: pools, their backends (address, weight, limit) and strategy
//! objects, built in one go from a [`TableSpec`] and a [`Registry`]. Everything mutable lives
//! in the shared backend states, so a table is replaced whole on reload and never edited.
//! `pick` runs for every accepted client on every worker: it must never lock or allocate.

use std::net::SocketAddr;
use std::time::Duration;

use super::backend::Backend;
use super::guard::ActiveGuard;
use super::health::LazyNow;
use super::registry::Registry;
use super::snapshot::{BackendSnapshot, PoolSnapshot};
use super::spec::{StrategyKind, TableSpec};
use super::strategy::{self, Strategy};

/// A chosen backend with a connection slot already counted on it.
#[derive(Debug)]
pub struct Pick {
    /// Index in the pool; pass it in `exclude` when retrying another backend.
    pub backend: usize,
    pub addr: SocketAddr,
    pub guard: ActiveGuard,
}

/// One pool of a table.
#[derive(Debug)]
pub struct PoolTable {
    name: String,
    kind: StrategyKind,
    connect_timeout: Duration,
    idle_timeout: Duration,
    retries: u32,
    backends: Vec<Backend>,
    strategy: Box<dyn Strategy>,
}

impl PoolTable {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn strategy(&self) -> StrategyKind {
        self.kind
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub fn retries(&self) -> u32 {
        self.retries
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub fn backend_addr(&self, idx: usize) -> Option<SocketAddr> {
        self.backends.get(idx).map(|b| b.addr)
    }

    /// Active connections on backend `idx` right now (counted across all tables).
    pub fn backend_active(&self, idx: usize) -> Option<u32> {
        self.backends.get(idx).map(|b| b.state.active())
    }

    /// Picks a backend not in `exclude` (indexes already tried for this client) and counts a
    /// connection on it; None if every backend is excluded, down, full or drained.
    pub fn pick(&self, exclude: &[usize]) -> Option<Pick> {
        self.pick_with(exclude, &mut LazyNow::clock())
    }

    /// [`pick`](Self::pick) at a given `clock::now_ms()` value.
    pub fn pick_at(&self, exclude: &[usize], now_ms: u64) -> Option<Pick> {
        self.pick_with(exclude, &mut LazyNow::fixed(now_ms))
    }

    #[inline]
    fn pick_with(&self, exclude: &[usize], now: &mut LazyNow) -> Option<Pick> {
        let idx = self.strategy.pick(&self.backends, exclude, now)?;
        let backend = &self.backends[idx];
        Some(Pick {
            backend: idx,
            addr: backend.addr,
            guard: ActiveGuard::new(backend.state.clone(), backend.addr),
        })
    }

    /// The pool's backends as they are at `now_ms`.
    pub fn snapshot_at(&self, now_ms: u64) -> PoolSnapshot {
        PoolSnapshot {
            name: self.name.clone(),
            backends: self
                .backends
                .iter()
                .map(|b| BackendSnapshot {
                    addr: b.addr,
                    weight: b.weight,
                    max_connections: b.max_connections,
                    active: b.state.active(),
                    down: b.state.health.is_down_at(now_ms),
                    consecutive_failures: b.state.health.consecutive_failures(),
                })
                .collect(),
        }
    }
}

/// An immutable snapshot of all pools; see the module doc.
#[derive(Debug, Default)]
pub struct Table {
    pools: Vec<PoolTable>,
}

impl Table {
    /// Builds the table, taking each backend's live state from `registry` by (pool, addr), so
    /// counts and health carry over from the previous table. Two entries with the same address
    /// in one pool share one state (one count, one health).
    pub fn build(spec: &TableSpec, registry: &Registry) -> Table {
        registry.with_states(|state_of| {
            let pools = spec
                .pools
                .iter()
                .map(|pool| {
                    let backends: Vec<Backend> = pool
                        .backends
                        .iter()
                        .map(|b| {
                            let state = state_of(&pool.name, b.addr);
                            state.health.set_policy(&spec.health);
                            Backend {
                                addr: b.addr,
                                weight: b.weight,
                                max_connections: b.max_connections,
                                state,
                            }
                        })
                        .collect();
                    PoolTable {
                        name: pool.name.clone(),
                        kind: pool.strategy,
                        connect_timeout: pool.connect_timeout,
                        idle_timeout: pool.idle_timeout,
                        retries: pool.retries,
                        strategy: strategy::build(pool.strategy, &backends),
                        backends,
                    }
                })
                .collect();
            Table { pools }
        })
    }

    pub fn pools(&self) -> &[PoolTable] {
        &self.pools
    }

    pub fn pool(&self, idx: usize) -> Option<&PoolTable> {
        self.pools.get(idx)
    }

    /// Index of the pool named `name` (a linear scan: pools are few, and this is resolved
    /// once per listener, not per client).
    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }

    /// [`PoolTable::pick`] on pool `pool`; None also if there is no such pool.
    #[inline]
    pub fn pick(&self, pool: usize, exclude: &[usize]) -> Option<Pick> {
        self.pools.get(pool)?.pick(exclude)
    }

    /// [`pick`](Self::pick) at a given `clock::now_ms()` value.
    pub fn pick_at(&self, pool: usize, exclude: &[usize], now_ms: u64) -> Option<Pick> {
        self.pools.get(pool)?.pick_at(exclude, now_ms)
    }

    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        self.snapshot_at(crate::clock::now_ms())
    }

    pub fn snapshot_at(&self, now_ms: u64) -> Vec<PoolSnapshot> {
        self.pools.iter().map(|p| p.snapshot_at(now_ms)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::{addr, spec};
    use crate::balance::StrategyKind::{LeastConnections, RoundRobin};

    #[test]
    fn accessors_follow_the_spec() {
        let registry = Registry::new();
        let mut spec = spec(RoundRobin, &[(1, 0), (2, 5)]);
        let mut second = spec.pools[0].clone();
        second.name = "q".into();
        second.strategy = LeastConnections;
        spec.pools.push(second);
        let table = Table::build(&spec, &registry);
        assert_eq!(table.pools().len(), 2);
        assert_eq!(table.pool_index("q"), Some(1));
        assert_eq!(table.pool_index("missing"), None);
        let pool = table.pool(0).unwrap();
        assert_eq!(pool.name(), "p");
        assert_eq!(pool.strategy(), RoundRobin);
        assert_eq!(pool.connect_timeout(), Duration::from_secs(1));
        assert_eq!(pool.idle_timeout(), Duration::from_secs(60));
        assert_eq!(pool.retries(), 2);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.backend_addr(1), Some(addr(1)));
        assert_eq!(pool.backend_addr(2), None);
        assert_eq!(pool.backend_active(2), None);
        assert!(table.pick(2, &[]).is_none(), "no such pool");
        assert_eq!(
            registry.len(),
            4,
            "same addrs in two pools are two backends"
        );
        let pick = table.pick(1, &[0]).unwrap();
        assert_eq!(
            (pick.backend, pick.addr, pick.guard.addr()),
            (1, addr(1), addr(1))
        );
    }

    #[test]
    fn rebuild_keeps_counts_and_health() {
        let registry = Registry::new();
        let a = Table::build(&spec(LeastConnections, &[(1, 0), (1, 0)]), &registry);
        let guard = a.pick_at(0, &[1], 0).unwrap().guard;
        let failed = a.pick_at(0, &[0], 0).unwrap().guard;
        assert!(failed.connect_failed_at(0));
        drop(failed);
        let b = Table::build(
            &spec(LeastConnections, &[(1, 0), (1, 0), (1, 0)]),
            &registry,
        );
        drop(a);
        let snap = &b.snapshot_at(0)[0].backends;
        assert_eq!(snap[0].active, 1);
        assert!(snap[1].down && snap[1].consecutive_failures == 1);
        assert_eq!(snap[2].active, 0);
        drop(guard);
        assert_eq!(b.snapshot_at(0)[0].backends[0].active, 0);
    }

    #[test]
    fn removed_backend_guard_releases_cleanly() {
        let registry = Registry::new();
        let a = Table::build(&spec(RoundRobin, &[(1, 0), (1, 0)]), &registry);
        let guard = a.pick_at(0, &[0], 0).unwrap().guard;
        assert_eq!(guard.addr(), addr(1));
        let b = Table::build(&spec(RoundRobin, &[(1, 0)]), &registry);
        drop(a);
        assert_eq!(
            registry.len(),
            2,
            "the live guard keeps the removed backend known"
        );
        // Re-adding it while the connection lives must find the same count.
        let c = Table::build(&spec(RoundRobin, &[(1, 0), (1, 0)]), &registry);
        assert_eq!(c.snapshot_at(0)[0].backends[1].active, 1);
        drop(c);
        drop(guard);
        let _d = Table::build(&spec(RoundRobin, &[(1, 0)]), &registry);
        assert_eq!(registry.len(), 1, "pruned once nothing holds it");
        assert_eq!(b.snapshot_at(0)[0].backends[0].active, 0);
    }

    #[test]
    fn reload_changes_limits_against_the_live_count() {
        let registry = Registry::new();
        let a = Table::build(&spec(LeastConnections, &[(1, 0)]), &registry);
        let held: Vec<Pick> = (0..3).map(|_| a.pick_at(0, &[], 0).unwrap()).collect();
        let b = Table::build(&spec(LeastConnections, &[(1, 3)]), &registry);
        assert!(
            b.pick_at(0, &[], 0).is_none(),
            "3 live connections already fill max 3"
        );
        drop(held);
        assert!(b.pick_at(0, &[], 0).is_some());
    }
}
