//! The immutable backend table: all pools, built in one go from a [`TableSpec`] and a
//! [`Registry`]. Everything mutable lives in the shared backend states, so a table is replaced
//! whole on reload and never edited. [`Table::pick`] runs for every accepted client on every
//! worker: it must never lock, allocate or read the clock (the request carries the time).

use super::backend::Backend;
use super::pool::PoolTable;
use super::registry::Registry;
use super::request::{NoPick, Pick, PickRequest};
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

    /// After a reload swapped `old` for `new`: every backend of `old` that `new` no longer has
    /// (same pool, same address) is marked removed, its live streams to be cut at
    /// `deadline_of(pool name)`; every backend of `new` is cleared of such a mark (one removed
    /// earlier may be back).
    pub fn mark_removed(old: &Table, new: &Table, deadline_of: impl Fn(&str) -> u64) {
        for p in &new.pools {
            for b in p.backends() {
                b.state.clear_removed();
            }
        }
        for p in &old.pools {
            let kept = new.pools.iter().find(|n| n.name() == p.name());
            for b in p.backends() {
                let still = kept.is_some_and(|n| n.backends().iter().any(|x| x.addr == b.addr));
                if !still {
                    b.state.set_removed(deadline_of(p.name()));
                }
            }
        }
    }

    /// Sets every backend's foreign count (streams of a draining predecessor process, see
    /// `BackendState::set_foreign`) to `count_of(pool name, addr)`; 0 for those it does not
    /// know. Control plane only (a hand-over report every ~500 ms), never on the pick path.
    pub fn set_foreign(&self, count_of: impl Fn(&str, std::net::SocketAddr) -> u32) {
        for p in &self.pools {
            for b in p.backends() {
                b.state.set_foreign(count_of(p.name(), b.addr));
            }
        }
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
                            state
                                .health
                                .set_policy(pool.passive.as_ref().unwrap_or(&spec.health));
                            state.check.configure(pool.check.as_ref());
                            state.latency.set_decay(pool.latency_decay);
                            Backend {
                                index,
                                addr: b.addr,
                                // Weight 0 is how every strategy already skips a backend.
                                weight: if b.drain { 0 } else { b.weight },
                                drain: b.drain,
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

    /// Picks a backend of pool `req.pool` that is not in `req.exclude` (positions already
    /// tried for this client), lowest tier first, and counts a connection on it. `req.client`
    /// is used by `hash`; `req.now_ms` is the time for down deadlines, slow start and latency
    /// decay. On failure says whether waiting could help ([`NoPick::AllFull`]) or not
    /// ([`NoPick::Unavailable`], also when there is no such pool).
    #[inline]
    pub fn pick(&self, req: &PickRequest) -> Result<Pick, NoPick> {
        self.pools.get(req.pool).ok_or(NoPick::Unavailable)?.pick(
            req.exclude,
            req.client,
            req.session,
            req.now_ms,
        )
    }

    /// Every pool's backends as they are at `now_ms` (`clock::now_ms()` milliseconds).
    pub fn snapshot(&self, now_ms: u64) -> Vec<PoolSnapshot> {
        self.pools.iter().map(|p| p.snapshot(now_ms)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::{addr, pick_at, spec};
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
        assert!(!pool.needs_client_addr());
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.backend_addr(1), Some(addr(1)));
        assert_eq!(pool.backend_addr(2), None);
        assert_eq!(pool.backend_active(2), None);
        assert_eq!(
            table.pick(&PickRequest::new(2, 0)).unwrap_err(),
            NoPick::Unavailable,
            "no such pool"
        );
        assert_eq!(
            registry.len(),
            4,
            "same addrs in two pools are two backends"
        );
        let pick = table.pick(&PickRequest::new(1, 0).excluding(&[0])).unwrap();
        assert_eq!(
            (pick.backend, pick.addr, pick.guard.addr()),
            (1, addr(1), addr(1))
        );
    }

    #[test]
    fn rebuild_keeps_counts_and_health() {
        let registry = Registry::new();
        let a = Table::build(&spec(LeastConnections, &[(1, 0), (1, 0)]), &registry);
        let guard = pick_at(&a, &[1], 0).unwrap().guard;
        let failed = pick_at(&a, &[0], 0).unwrap().guard;
        assert!(failed.connect_failed(0));
        drop(failed);
        let b = Table::build(
            &spec(LeastConnections, &[(1, 0), (1, 0), (1, 0)]),
            &registry,
        );
        drop(a);
        let snap = &b.snapshot(0)[0].backends;
        assert_eq!(snap[0].active, 1);
        assert!(snap[1].down && snap[1].consecutive_failures == 1);
        assert_eq!(snap[2].active, 0);
        drop(guard);
        assert_eq!(b.snapshot(0)[0].backends[0].active, 0);
    }

    #[test]
    fn least_connections_counts_a_predecessors_streams_but_snapshots_keep_them_apart() {
        let registry = Registry::new();
        let a = Table::build(&spec(LeastConnections, &[(1, 0), (1, 0)]), &registry);
        a.set_foreign(|pool, at| if pool == "p" && at == addr(0) { 3 } else { 0 });
        let picks: Vec<Pick> = (0..3).map(|_| pick_at(&a, &[], 0).unwrap()).collect();
        assert!(
            picks.iter().all(|p| p.backend == 1),
            "backend 0 holds 3 foreign streams"
        );
        let snap = &a.snapshot(0)[0].backends;
        assert_eq!((snap[0].active, snap[0].foreign), (0, 3));
        assert_eq!((snap[1].active, snap[1].foreign), (3, 0));
        // A rebuild keeps it (it lives in the shared state); cleared, picks tie again.
        let b = Table::build(&spec(LeastConnections, &[(1, 0), (1, 0)]), &registry);
        assert_eq!(b.snapshot(0)[0].backends[0].foreign, 3);
        b.set_foreign(|_, _| 0);
        assert_eq!(pick_at(&b, &[], 0).unwrap().backend, 0);
    }

    #[test]
    fn removed_backend_guard_releases_cleanly() {
        let registry = Registry::new();
        let a = Table::build(&spec(RoundRobin, &[(1, 0), (1, 0)]), &registry);
        let guard = pick_at(&a, &[0], 0).unwrap().guard;
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
        assert_eq!(c.snapshot(0)[0].backends[1].active, 1);
        drop(c);
        drop(guard);
        let _d = Table::build(&spec(RoundRobin, &[(1, 0)]), &registry);
        assert_eq!(registry.len(), 1, "pruned once nothing holds it");
        assert_eq!(b.snapshot(0)[0].backends[0].active, 0);
    }

    #[test]
    fn drained_backend_is_never_picked_but_keeps_its_streams() {
        for kind in crate::balance::tests::ALL {
            let registry = Registry::new();
            let a = Table::build(&spec(kind, &[(1, 0), (1, 0)]), &registry);
            let held = pick_at(&a, &[1], 0).unwrap();
            assert_eq!(held.backend, 0);
            let mut drained = spec(kind, &[(1, 0), (1, 0)]);
            drained.pools[0].backends[0].drain = true;
            let b = Table::build(&drained, &registry);
            for _ in 0..50 {
                assert_eq!(pick_at(&b, &[], 0).unwrap().backend, 1, "{kind:?}");
            }
            let snap = &b.snapshot(0)[0].backends[0];
            assert!(
                snap.draining && snap.active == 1 && snap.weight == 0,
                "{kind:?}"
            );
            assert_eq!(
                pick_at(&b, &[1], 0).unwrap_err(),
                NoPick::Unavailable,
                "{kind:?}: a drained backend is no reason to queue"
            );
            drop(held);
            let c = Table::build(&spec(kind, &[(1, 0), (1, 0)]), &registry);
            assert!((0..50).any(|_| pick_at(&c, &[], 0).unwrap().backend == 0));
        }
    }

    #[test]
    fn reload_changes_limits_against_the_live_count() {
        let registry = Registry::new();
        let a = Table::build(&spec(LeastConnections, &[(1, 0)]), &registry);
        let held: Vec<Pick> = (0..3).map(|_| pick_at(&a, &[], 0).unwrap()).collect();
        let b = Table::build(&spec(LeastConnections, &[(1, 3)]), &registry);
        assert!(
            pick_at(&b, &[], 0).is_err(),
            "3 live connections already fill max 3"
        );
        drop(held);
        assert!(pick_at(&b, &[], 0).is_ok());
    }
}
