//! One pool of an immutable table: its backends (address, weight, limit, tier), its settings,
//! and one strategy object per tier. Tier selection wraps every strategy: a pick tries the
//! lowest tier first and moves up only when no backend there is usable (up, weighted in, not
//! excluded, not full), so higher tiers take only the overflow. A pick runs for every accepted
//! client on every worker: it must never lock, allocate or read the clock.

use std::net::SocketAddr;
use std::time::Duration;

use super::backend::{Backend, PickCtx};
use super::engine_spec::EngineScrape;
use super::guard::ActiveGuard;
use super::request::{NoPick, Pick};
use super::slow_start;
use super::snapshot::{BackendSnapshot, HealthState, PoolSnapshot};
use super::spec::{ActiveCheck, HashKey, PoolSpec, StrategyKind};
use super::state::SharedState;
use super::strategy::{self, hash_client, Strategy};

/// One tier of a pool: its backends (copies of the pool's, in pool order) and their strategy.
#[derive(Debug)]
struct Tier {
    backends: Vec<Backend>,
    strategy: Box<dyn Strategy>,
}

/// One pool of a table.
#[derive(Debug)]
pub struct PoolTable {
    spec: PoolSpec,
    backends: Vec<Backend>,
    /// Ascending by tier number; empty tiers do not exist.
    tiers: Vec<Tier>,
    slow_start_ms: u64,
}

impl PoolTable {
    /// `backends` are in pool order, `index` set. The spec's backend list is not kept.
    pub(crate) fn new(mut spec: PoolSpec, backends: Vec<Backend>) -> Self {
        spec.backends = Vec::new();
        let mut levels: Vec<u32> = backends.iter().map(|b| b.tier).collect();
        levels.sort_unstable();
        levels.dedup();
        let tiers = levels
            .into_iter()
            .map(|level| {
                let members: Vec<Backend> = backends
                    .iter()
                    .filter(|b| b.tier == level)
                    .cloned()
                    .collect();
                Tier {
                    strategy: strategy::build(&spec, &members),
                    backends: members,
                }
            })
            .collect();
        Self {
            slow_start_ms: u64::try_from(spec.slow_start.as_millis()).unwrap_or(u64::MAX),
            spec,
            backends,
            tiers,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn strategy(&self) -> StrategyKind {
        self.spec.strategy
    }

    /// True if picks use the client address (`hash`): pass it in `PickRequest::client`.
    pub fn needs_client_addr(&self) -> bool {
        self.spec.strategy == StrategyKind::Hash
    }

    pub fn hash_key(&self) -> HashKey {
        self.spec.hash_key
    }

    pub fn slow_start(&self) -> Duration {
        self.spec.slow_start
    }

    /// The pool's active health check, if it has one.
    pub fn check(&self) -> Option<&ActiveCheck> {
        self.spec.check.as_ref()
    }

    /// The pool's engine-metrics scrape, if it has one.
    pub fn engine_scrape(&self) -> Option<&EngineScrape> {
        self.spec.engine.as_ref()
    }

    /// Each distinct backend's address and shared state, for the checker and the scraper. A
    /// backend listed twice (same address) shares one state and is listed once.
    pub(crate) fn check_targets(&self) -> Vec<(SocketAddr, SharedState)> {
        let mut targets: Vec<(SocketAddr, SharedState)> = Vec::with_capacity(self.backends.len());
        for b in &self.backends {
            if !targets.iter().any(|(addr, _)| *addr == b.addr) {
                targets.push((b.addr, b.state.clone()));
            }
        }
        targets
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub(crate) fn backends(&self) -> &[Backend] {
        &self.backends
    }

    pub fn backend_addr(&self, idx: usize) -> Option<SocketAddr> {
        self.backends.get(idx).map(|b| b.addr)
    }

    /// Active connections on backend `idx` right now (counted across all tables).
    pub fn backend_active(&self, idx: usize) -> Option<u32> {
        self.backends.get(idx).map(|b| b.state.active())
    }

    /// Picks a backend not in `exclude` at `now_ms`, lowest tier first, and counts a
    /// connection on it; see [`Table::pick`](super::Table::pick).
    #[inline]
    pub(crate) fn pick(
        &self,
        exclude: &[usize],
        client: Option<SocketAddr>,
        session: Option<u64>,
        now_ms: u64,
    ) -> Result<Pick, NoPick> {
        let key = match (session, client) {
            (Some(key), _) if self.needs_client_addr() => Some(key),
            (_, Some(addr)) if self.needs_client_addr() => {
                Some(hash_client(addr, self.spec.hash_key))
            }
            _ => None,
        };
        let ctx = PickCtx {
            exclude,
            now_ms,
            key,
            slow_start_ms: self.slow_start_ms,
        };
        for tier in &self.tiers {
            if let Some(pos) = tier.strategy.pick(&tier.backends, &ctx) {
                let backend = &tier.backends[pos];
                return Ok(Pick {
                    backend: backend.index,
                    addr: backend.addr,
                    guard: ActiveGuard::new(backend.state.clone(), backend.addr),
                });
            }
        }
        Err(self.why_not(&ctx))
    }

    /// Cold path after every tier failed: a usable backend exists, so they must all be full
    /// (or one just freed a slot, which a retry will find).
    fn why_not(&self, ctx: &PickCtx) -> NoPick {
        if self.backends.iter().any(|b| ctx.is_candidate(b)) {
            NoPick::AllFull
        } else {
            NoPick::Unavailable
        }
    }

    /// The pool's backends as they are at `now_ms`.
    pub fn snapshot(&self, now_ms: u64) -> PoolSnapshot {
        PoolSnapshot {
            name: self.spec.name.clone(),
            backends: self
                .backends
                .iter()
                .map(|b| {
                    let permille = b.state.ramp_permille(self.slow_start_ms, now_ms);
                    let check = b.state.check.status();
                    let down = b.state.health.is_down_at(now_ms);
                    BackendSnapshot {
                        addr: b.addr,
                        weight: b.weight,
                        max_connections: b.max_connections,
                        active: b.state.active(),
                        idle: b.state.quiet(),
                        foreign: b.state.foreign(),
                        down,
                        consecutive_failures: b.state.health.consecutive_failures(),
                        tier: b.tier,
                        draining: b.drain,
                        latency_ms: b.state.latency.estimate_ms_at(now_ms),
                        effective_weight: slow_start::display_weight(b.weight, permille),
                        counters: b.state.counters.snapshot(),
                        check,
                        health: HealthState::of(b.weight, check, down, b.state.engine.stalled()),
                        engine: b.state.engine.read_at(now_ms),
                        engine_scraped: self.spec.engine.is_some(),
                        engine_stalled: b.state.engine.stalled(),
                    }
                })
                .collect(),
        }
    }
}
