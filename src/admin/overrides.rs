//! Operator overrides from the admin API: per backend (pool name, address) a drain flag and a
//! weight, applied to the table spec built from the config before the table is built. A
//! backend keeps its identity across builds, so its live count, health and latency carry over.
//!
//! An override holds until a reload changes that backend: it remembers the backend as the
//! config had it when the override was set, and [`Overrides::apply`] drops it when the config
//! says something else (or no longer has the backend). Only the control plane uses this; it
//! must never be read on the pick path (the built table carries the result).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::balance::{BackendSpec, TableSpec};

/// What an operator changed on one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    /// No new streams; live ones go on.
    pub drain: bool,
    /// Replaces the configured weight.
    pub weight: Option<u32>,
}

/// One operator change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Drain,
    /// Undoes a drain (a weight override stays).
    Enable,
    Weight(u32),
}

#[derive(Debug)]
struct Entry {
    /// The backend as the config had it when the override was set.
    base: BackendSpec,
    set: Override,
}

/// Every override in force, keyed by (pool name, backend address).
#[derive(Debug, Default)]
pub struct Overrides {
    map: HashMap<(String, SocketAddr), Entry>,
}

impl Overrides {
    /// Applies `change` to the backend `base` of pool `pool` (as the config has it). An
    /// override that no longer changes anything is forgotten.
    pub fn set(&mut self, pool: &str, base: BackendSpec, change: Change) {
        let key = (pool.to_owned(), base.addr);
        let entry = self.map.entry(key.clone()).or_insert(Entry {
            base,
            set: Override::default(),
        });
        entry.base = base;
        match change {
            Change::Drain => entry.set.drain = true,
            Change::Enable => entry.set.drain = false,
            Change::Weight(w) => entry.set.weight = (w != base.weight).then_some(w),
        }
        if entry.set == Override::default() {
            self.map.remove(&key);
        }
    }

    /// The override of (pool, addr), if any.
    pub fn get(&self, pool: &str, addr: SocketAddr) -> Option<Override> {
        self.map.get(&(pool.to_owned(), addr)).map(|e| e.set)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Applies every override to `spec` (built from the config). Overrides whose backend the
    /// config changed or removed are dropped and returned, so the caller can log them.
    pub fn apply(&mut self, spec: &mut TableSpec) -> Vec<(String, SocketAddr)> {
        let mut dropped = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pool in &mut spec.pools {
            for b in &mut pool.backends {
                let key = (pool.name.clone(), b.addr);
                let Some(entry) = self.map.get(&key) else {
                    continue;
                };
                if entry.base != *b {
                    self.map.remove(&key);
                    dropped.push(key);
                    continue;
                }
                b.drain = entry.set.drain;
                if let Some(w) = entry.set.weight {
                    b.weight = w;
                }
                seen.insert(key);
            }
        }
        let gone: Vec<_> = self
            .map
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.map.remove(&key);
            dropped.push(key);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{HashKey, PoolSpec, StrategyKind};
    use std::time::Duration;

    fn backend(port: u16, weight: u32) -> BackendSpec {
        BackendSpec {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            weight,
            max_connections: 0,
            tier: 0,
            drain: false,
        }
    }

    fn spec(backends: Vec<BackendSpec>) -> TableSpec {
        TableSpec {
            pools: vec![PoolSpec {
                name: "p".into(),
                strategy: StrategyKind::LeastConnections,
                backends,
                hash_key: HashKey::ClientIp,
                hash_balance_factor: 1.25,
                latency_decay: Duration::from_secs(10),
                slow_start: Duration::ZERO,
                passive: None,
                check: None,
                count: Default::default(),
                least_load: Default::default(),
                engine: None,
            }],
            health: Default::default(),
        }
    }

    #[test]
    fn drain_weight_and_enable_apply_to_the_spec() {
        let mut o = Overrides::default();
        o.set("p", backend(1, 1), Change::Drain);
        o.set("p", backend(2, 1), Change::Weight(5));
        let mut s = spec(vec![backend(1, 1), backend(2, 1), backend(3, 1)]);
        assert!(o.apply(&mut s).is_empty());
        let b = &s.pools[0].backends;
        assert!(b[0].drain && b[0].weight == 1);
        assert!(!b[1].drain && b[1].weight == 5);
        assert_eq!(b[2], backend(3, 1));
        o.set("p", backend(1, 1), Change::Enable);
        assert_eq!(
            o.get("p", backend(1, 1).addr),
            None,
            "nothing left to override"
        );
        o.set("p", backend(2, 1), Change::Weight(1));
        assert!(o.is_empty(), "the configured weight again");
    }

    #[test]
    fn a_reload_that_changes_or_removes_the_backend_drops_its_override() {
        let mut o = Overrides::default();
        o.set("p", backend(1, 1), Change::Drain);
        o.set("p", backend(2, 1), Change::Drain);
        o.set("p", backend(3, 1), Change::Weight(7));
        // Backend 1 unchanged, 2 gets a new weight, 3 is removed.
        let mut s = spec(vec![backend(1, 1), backend(2, 4)]);
        let mut dropped = o.apply(&mut s);
        dropped.sort();
        assert_eq!(
            dropped,
            vec![
                ("p".into(), backend(2, 1).addr),
                ("p".into(), backend(3, 1).addr)
            ]
        );
        assert!(s.pools[0].backends[0].drain);
        assert_eq!(s.pools[0].backends[1], backend(2, 4));
        assert_eq!(o.len(), 1);
    }
}
