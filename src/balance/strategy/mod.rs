//! Load-balancing strategies, one file each, behind the small [`Strategy`] trait. A strategy
//! is built once per table from the pool's backends and then shared read-only by all workers:
//! `pick` must be lock-free, must not allocate, and must return only a backend on which it has
//! already acquired a slot (so `max_connections` holds exactly under races).

mod least_connections;
mod round_robin;

use std::cell::Cell;
use std::fmt;

use super::backend::Backend;
use super::health::LazyNow;
use super::spec::StrategyKind;

pub(crate) use least_connections::LeastConnections;
pub(crate) use round_robin::RoundRobin;

pub(crate) trait Strategy: Send + Sync + fmt::Debug {
    /// Picks a backend that is not in `exclude`, not down, not full, with weight > 0, takes
    /// one slot on it (`Backend::try_acquire`) and returns its index; None if there is none.
    fn pick(&self, backends: &[Backend], exclude: &[usize], now: &mut LazyNow) -> Option<usize>;
}

pub(crate) fn build(kind: StrategyKind, backends: &[Backend]) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::LeastConnections => Box::new(LeastConnections),
        StrategyKind::RoundRobin => Box::new(RoundRobin::new(backends)),
    }
}

thread_local! {
    /// Per worker thread, so rotating the scan start costs no shared write.
    static SCAN_START: Cell<usize> = const { Cell::new(0) };
}

/// A scan start in `0..n` that moves by one on each call from the same thread, so ties and
/// fallbacks spread over all backends instead of always landing on the first.
#[inline]
pub(crate) fn rotating_start(n: usize) -> usize {
    debug_assert!(n > 0);
    SCAN_START.with(|start| {
        let mut value = start.get();
        // Divide only when the counter passes the end (or a smaller pool follows a larger).
        if value >= n {
            value %= n;
        }
        start.set(value + 1);
        value
    })
}

/// The first backend from `start` on (wrapping), not excluded, on which a slot could be
/// taken (`Backend::try_take`); one full pass at most.
pub(crate) fn first_available(
    backends: &[Backend],
    start: usize,
    exclude: &[usize],
    now: &mut LazyNow,
) -> Option<usize> {
    let n = backends.len();
    let mut idx = start;
    for _ in 0..n {
        if idx >= n {
            idx = 0;
        }
        let backend = &backends[idx];
        if !exclude.contains(&idx) && backend.try_take(now) {
            return Some(idx);
        }
        idx += 1;
    }
    None
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builds tables for the strategy tests through the public entry point.
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::balance::{BackendSpec, HealthPolicy, PoolSpec, StrategyKind, TableSpec};

    pub(crate) fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
    }

    /// One pool "p" with the given (weight, max_connections) per backend.
    pub(crate) fn spec(kind: StrategyKind, backends: &[(u32, u32)]) -> TableSpec {
        TableSpec {
            pools: vec![PoolSpec {
                name: "p".into(),
                strategy: kind,
                connect_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(60),
                retries: 2,
                backends: backends
                    .iter()
                    .enumerate()
                    .map(|(i, &(weight, max_connections))| BackendSpec {
                        addr: addr(i),
                        weight,
                        max_connections,
                    })
                    .collect(),
            }],
            health: HealthPolicy {
                fail_threshold: 1,
                ..HealthPolicy::default()
            },
        }
    }
}
