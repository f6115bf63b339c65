//! Load-balancing strategies, one file each, behind the small [`Strategy`] trait. A strategy
//! is built once per table and tier from that tier's backends and then shared read-only by all
//! workers: `pick` must be lock-free, must not allocate, and must return only a backend on
//! which it has already acquired a slot (so `max_connections` holds exactly under races).
//! Randomness comes from the per-thread [`rng`], never from shared state.

mod hash;
mod least_connections;
mod least_latency;
mod least_load;
mod power_of_two;
mod random;
pub(crate) mod rng;
mod round_robin;
mod sampler;

use std::fmt;

use super::backend::{Backend, PickCtx};
use super::spec::{PoolSpec, StrategyKind};

pub(crate) use hash::hash_client;
use sampler::WeightedDraw;

pub(crate) trait Strategy: Send + Sync + fmt::Debug {
    /// Picks a backend of `backends` (one tier) that is not excluded, not down, not full, with
    /// weight > 0, takes one slot on it (`Backend::try_acquire`) and returns its position in
    /// `backends`; None if there is none.
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize>;
}

/// The strategy of `pool` over `backends`, one tier of it.
pub(crate) fn build(pool: &PoolSpec, backends: &[Backend]) -> Box<dyn Strategy> {
    match pool.strategy {
        StrategyKind::LeastConnections => Box::new(least_connections::LeastConnections::new(
            backends, pool.count,
        )),
        StrategyKind::RoundRobin => Box::new(round_robin::RoundRobin::new(backends)),
        StrategyKind::PowerOfTwo => Box::new(power_of_two::PowerOfTwo::new(backends)),
        StrategyKind::LeastLatency => Box::new(least_latency::LeastLatency::new(backends)),
        StrategyKind::Random => Box::new(random::Random::new(backends)),
        StrategyKind::Hash => Box::new(hash::Hash::new(backends, pool.hash_balance_factor)),
        StrategyKind::LeastLoad => Box::new(least_load::LeastLoad::new(
            backends,
            pool.count,
            pool.least_load,
        )),
    }
}

/// The first backend from `start` on (wrapping), on which a slot could be taken
/// (`Backend::try_take`); one full pass at most. The fallback of the drawing strategies.
pub(crate) fn first_available(backends: &[Backend], start: usize, ctx: &PickCtx) -> Option<usize> {
    let n = backends.len();
    let mut idx = start;
    for _ in 0..n {
        if idx >= n {
            idx = 0;
        }
        if backends[idx].try_take(ctx) {
            return Some(idx);
        }
        idx += 1;
    }
    None
}

/// Where a scanning strategy starts: a backend drawn by weight (a ramping one admitted with
/// its ramp's probability). Scans keep the first of equally good backends in scan order, so
/// when all are equal (an idle pool, or a busy one in perfect balance) the start wins, and
/// picks spread by weight at the cost of one draw per pick instead of one per tie.
#[inline]
pub(crate) fn weighted_start(draw: &WeightedDraw, backends: &[Backend], ctx: &PickCtx) -> usize {
    let mut idx = 0;
    for _ in 0..START_DRAWS {
        match draw.draw() {
            None => return 0,
            Some(drawn) => idx = drawn,
        }
        if ctx.ramp_admits(&backends[idx]) {
            break;
        }
    }
    idx
}

/// Draws for a start before taking the last one drawn: only ramping backends decline, and
/// eight declines in a row are rare even when most of the pool is ramping.
const START_DRAWS: usize = 8;

#[cfg(test)]
pub(crate) mod test_support {
    //! Builds tables for the strategy tests through the public entry point.
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::balance::backend::Backend;
    use crate::balance::{
        BackendSpec, HashKey, HealthPolicy, NoPick, Pick, PickRequest, PoolSpec, StrategyKind,
        Table, TableSpec,
    };

    pub(crate) fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
    }

    /// A pool "p" of `kind` with the given backends and every other key at its default.
    pub(crate) fn pool(kind: StrategyKind, backends: Vec<BackendSpec>) -> PoolSpec {
        PoolSpec {
            name: "p".into(),
            strategy: kind,
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
        }
    }

    /// (weight, max_connections, tier) per backend, at `addr(i)`.
    pub(crate) fn backend_specs(backends: &[(u32, u32, u32)]) -> Vec<BackendSpec> {
        backends
            .iter()
            .enumerate()
            .map(|(i, &(weight, max_connections, tier))| BackendSpec {
                addr: addr(i),
                weight,
                max_connections,
                tier,
                drain: false,
            })
            .collect()
    }

    /// A table spec of one pool, fail threshold 1.
    pub(crate) fn table_spec(pool: PoolSpec) -> TableSpec {
        TableSpec {
            pools: vec![pool],
            health: HealthPolicy {
                fail_threshold: 1,
                ..HealthPolicy::default()
            },
        }
    }

    /// One pool "p" with the given (weight, max_connections) per backend, all in tier 0.
    pub(crate) fn spec(kind: StrategyKind, backends: &[(u32, u32)]) -> TableSpec {
        let with_tier: Vec<(u32, u32, u32)> = backends.iter().map(|&(w, m)| (w, m, 0)).collect();
        table_spec(pool(kind, backend_specs(&with_tier)))
    }

    /// A pick in pool 0 at `now_ms`, skipping `exclude`, without a client address.
    pub(crate) fn pick_at(table: &Table, exclude: &[usize], now_ms: u64) -> Result<Pick, NoPick> {
        table.pick(&PickRequest::new(0, now_ms).excluding(exclude))
    }

    /// Bare backends with fresh states, for strategy parts tested without a table.
    pub(crate) fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Backend {
                index: i,
                addr: addr(i),
                weight,
                max_connections: 0,
                tier: 0,
                drain: false,
                state: Arc::default(),
            })
            .collect()
    }
}
