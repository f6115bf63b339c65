//! Control-plane map from a backend's identity (pool name, address) to its live state, so
//! every rebuilt table shares the same counts, health and latency for the same backend. It also
//! remembers which backends the previous build had, so a backend added by a reload starts its
//! slow-start ramp. Only table builds touch it (under a mutex); the pick path must never.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::state::{BackendState, SharedState};

type Key = (String, SocketAddr);

/// Hands out one `BackendState` per (pool name, addr) for as long as anything uses it.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    states: HashMap<Key, SharedState>,
    /// The identities the last build asked for; None before the first build.
    previous: Option<HashSet<Key>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Backends currently known (those of live tables and those with live guards).
    pub fn len(&self) -> usize {
        self.inner.lock().states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs one table build at `now_ms`: `build` gets a function returning the state for
    /// (pool, addr); one that the previous build did not ask for is marked up at `now_ms`
    /// (slow start), except on the first build.
    /// Afterwards entries that nothing else holds are dropped; an entry still held by an older
    /// table or a live guard stays, so a backend removed and re-added while an old table or
    /// connection is alive keeps one shared count instead of two.
    pub(crate) fn with_states<T>(
        &self,
        now_ms: u64,
        build: impl FnOnce(&mut dyn FnMut(&str, SocketAddr) -> SharedState) -> T,
    ) -> T {
        let mut inner = self.inner.lock();
        let Inner { states, previous } = &mut *inner;
        let mut current: HashSet<Key> = HashSet::new();
        let built = build(&mut |pool: &str, addr: SocketAddr| {
            let key = (pool.to_owned(), addr);
            let state = states
                .entry(key.clone())
                .or_insert_with(|| SharedState::new(BackendState::of_pool(pool).into()))
                .clone();
            if previous.as_ref().is_some_and(|p| !p.contains(&key)) && !current.contains(&key) {
                state.mark_up_at(now_ms);
            }
            current.insert(key);
            state
        });
        *previous = Some(current);
        // strong_count == 1 is stable here: only this map can hand out new clones, and it is
        // locked. No holder also means no guard, hence no active connection.
        states.retain(|_, state| {
            let held = Arc::strong_count(state) > 1;
            debug_assert!(held || state.active() == 0);
            held
        });
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn same_identity_same_state() {
        let registry = Registry::new();
        let first = registry.with_states(0, |get| get("p", addr(1)));
        let again = registry.with_states(0, |get| get("p", addr(1)));
        let other_pool = registry.with_states(0, |get| get("q", addr(1)));
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other_pool));
    }

    #[test]
    fn unheld_entries_are_pruned() {
        let registry = Registry::new();
        let kept = registry.with_states(0, |get| {
            drop(get("p", addr(2)));
            get("p", addr(1))
        });
        assert_eq!(registry.len(), 1);
        drop(kept);
        registry.with_states(0, |_| ());
        assert!(registry.is_empty());
    }
}
