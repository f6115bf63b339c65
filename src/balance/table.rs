//! The immutable backend table: all pools, built in one go from a [`TableSpec`] and a
//! [`Registry`]. Everything mutable lives in the shared backend states, so a table is replaced
//! whole on reload and never edited. `pick_for` runs for every accepted client on every worker:
//! it must never lock or allocate.

use std::net::SocketAddr;

use super::backend::Backend;
use super::pool::{NoPick, Pick, PoolTable};
use super::registry::Registry;
use super::snapshot::PoolSnapshot;
use super::spec::TableSpec;

/// An immutable snapshot of all pools; see the module doc.
#[derive(Debug, Default)]
pub struct Table {
    pools: Vec<PoolTable>,
}

impl Table {
    /// Builds the table, taking each backend's live state from `registry` by (pool, addr), so
    /// counts, health and latency carry over from the previous table. Two entries with the
    /// same address in one pool share one state (one count, one health). A backend that was
    /// not in the registry's previous table starts a slow-start ramp now (not on the first
    /// build: a starting process has nothing to protect new backends from).
    pub fn build(spec: &TableSpec, registry: &Registry) -> Table {
        Self::build_at(spec, registry, crate::clock::now_ms())
    }

    /// [`build`](Self::build) at a given `clock::now_ms()` value.
    pub fn build_at(spec: &TableSpec, registry: &Registry, now_ms: u64) -> Table {
        registry.with_states(now_ms, |state_of| {
            let pools = spec
                .pools
                .iter()
                .map(|pool| {
                    let backends: Vec<Backend> = pool
                        .backends
                        .iter()
                        .enumerate()
                        .map(|(index, b)| {
                            let state = state_of(&pool.name, b.addr);
                            state.health.set_policy(&spec.health);
                            state.latency.set_decay(pool.latency_decay);
                            Backend {
                                index,
                                addr: b.addr,
                                weight: b.weight,
                                max_connections: b.max_connections,
                                tier: b.tier,
                                state,
                            }
                        })
                        .collect();
                    PoolTable::new(pool.clone(), backends)
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
        self.pools.iter().position(|p| p.name() == name)
    }

    /// [`PoolTable::pick_for`] on pool `pool`; `Unavailable` also if there is no such pool.
    #[inline]
    pub fn pick_for(
        &self,
        pool: usize,
        exclude: &[usize],
        client: Option<SocketAddr>,
    ) -> Result<Pick, NoPick> {
        self.pools
            .get(pool)
            .ok_or(NoPick::Unavailable)?
            .pick_for(exclude, client)
    }

    /// [`pick_for`](Self::pick_for) at a given `clock::now_ms()` value.
    pub fn pick_for_at(
        &self,
        pool: usize,
        exclude: &[usize],
        client: Option<SocketAddr>,
        now_ms: u64,
    ) -> Result<Pick, NoPick> {
        self.pools
            .get(pool)
            .ok_or(NoPick::Unavailable)?
            .pick_for_at(exclude, client, now_ms)
    }

    /// `pick_for(pool, exclude, None).ok()`.
    #[inline]
    pub fn pick(&self, pool: usize, exclude: &[usize]) -> Option<Pick> {
        self.pick_for(pool, exclude, None).ok()
    }

    /// [`pick`](Self::pick) at a given `clock::now_ms()` value.
    pub fn pick_at(&self, pool: usize, exclude: &[usize], now_ms: u64) -> Option<Pick> {
        self.pick_for_at(pool, exclude, None, now_ms).ok()
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
    use std::time::Duration;

    #[test]
    fn accessors_follow_the_spec() {
        let registry = Registry::new();
        let mut spec = spec(RoundRobin, &[(1, 0), (2, 5)]);
        let mut second = spec.pools[0].clone();
        second.name = "q".into();
        second.strategy = LeastConnections;
        second.queue_size = 7;
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
        assert!(!pool.needs_client_addr());
        assert_eq!(
            (pool.queue_size(), table.pool(1).unwrap().queue_size()),
            (0, 7)
        );
        assert_eq!(pool.queue_timeout(), Duration::from_secs(5));
        assert_eq!(pool.max_connection_age(), None);
        assert_eq!(pool.max_connection_age_jitter(), Duration::ZERO);
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
