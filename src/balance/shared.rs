//! The table as all workers see it: an `ArcSwap` that workers load without locking and the
//! control plane replaces whole on reload. Never mutate a loaded table; build a new one.

use std::fmt;
use std::sync::Arc;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;

use super::table::Table;

/// The current [`Table`], shared by all worker threads.
pub struct SharedTable {
    current: Arc<ArcSwap<Table>>,
}

impl SharedTable {
    pub fn new(table: Table) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(table)),
        }
    }

    /// A per-worker handle whose `load` costs one plain atomic read while the table is
    /// unchanged (no shared write at all), for workers that pick on every accept.
    pub fn cache(&self) -> TableCache {
        TableCache {
            cache: Cache::new(self.current.clone()),
        }
    }

    /// The current table, lock-free. The guard is meant for one pick; keep `load_full` for
    /// anything held longer (each thread has only a few cheap guard slots).
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Table>> {
        self.current.load()
    }

    /// The current table as an owned `Arc`, for holding across many operations.
    pub fn load_full(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// Replaces the table; picks already made on the old one keep their guards.
    pub fn store(&self, table: Table) {
        self.current.store(Arc::new(table));
    }

    /// [`store`](Self::store), returning (the table replaced, the one stored) for a caller
    /// that compares them (what a rebuild dropped drains).
    pub fn replace(&self, table: Table) -> (Arc<Table>, Arc<Table>) {
        let new = Arc::new(table);
        let old = self.current.swap(new.clone());
        (old, new)
    }
}

/// One worker's cached view of a [`SharedTable`]; see [`SharedTable::cache`]. It keeps the
/// table it last saw alive until its next `load`, so call `load` for every pick.
pub struct TableCache {
    cache: Cache<Arc<ArcSwap<Table>>, Arc<Table>>,
}

impl TableCache {
    /// The current table: a pointer comparison, and a real load only after a `store`.
    #[inline]
    pub fn load(&mut self) -> &Arc<Table> {
        self.cache.load()
    }
}

impl fmt::Debug for TableCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableCache").finish_non_exhaustive()
    }
}

impl fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTable")
            .field("pools", &self.load().pools().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::spec;
    use crate::balance::{PickRequest, Registry, StrategyKind};

    #[test]
    fn store_swaps_whole_and_old_guards_survive() {
        let registry = Registry::new();
        let shared = SharedTable::new(Table::build(
            &spec(StrategyKind::RoundRobin, &[(1, 0)]),
            &registry,
        ));
        let old = shared.load_full();
        let guard = shared.load().pick(&PickRequest::new(0, 0)).unwrap().guard;
        shared.store(Table::build(
            &spec(StrategyKind::RoundRobin, &[(1, 0), (1, 0)]),
            &registry,
        ));
        assert_eq!(old.pool(0).unwrap().len(), 1);
        let current = shared.load();
        assert_eq!(current.pool(0).unwrap().len(), 2);
        assert_eq!(current.snapshot(0)[0].backends[0].active, 1);
        drop(guard);
        assert_eq!(current.snapshot(0)[0].backends[0].active, 0);
    }

    #[test]
    fn cache_follows_stores() {
        let registry = Registry::new();
        let shared = SharedTable::new(Table::build(
            &spec(StrategyKind::LeastConnections, &[(1, 0)]),
            &registry,
        ));
        let mut cache = shared.cache();
        assert_eq!(cache.load().pool(0).unwrap().len(), 1);
        shared.store(Table::build(
            &spec(StrategyKind::LeastConnections, &[(1, 0), (1, 0), (1, 0)]),
            &registry,
        ));
        assert_eq!(cache.load().pool(0).unwrap().len(), 3);
        fn assert_send<T: Send + 'static>() {}
        assert_send::<TableCache>();
    }
}
