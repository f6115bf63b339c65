//! What the engine applies per pool, taken from the validated config once: timeouts, retries,
//! the queue and max connection age, in the units the worker uses (milliseconds). The balance
//! table gets only what picking needs ([`table_spec`]).
//!
//! A policy is immutable once built; a reload builds a new one. It must never be read through
//! the balance table (which is for picking) nor change under a live connection's feet.

use crate::balance::{
    BackendSpec, CountMode, HealthPolicy, LeastLoadSpec, PoolSpec, StrategyKind, TableSpec,
};
use std::sync::Arc;

use crate::config::{Balance, Config, Count, HashKey};
use crate::route::{ProxyVersion, Routes};

/// The engine's view of one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolPolicy {
    pub connect_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub half_close_timeout_ms: u64,
    pub retries: u32,
    pub queue_size: u32,
    pub queue_timeout_ms: u64,
    /// Queue clients (instead of closing them) while every backend is down.
    pub queue_when_all_down: bool,
    /// Streams older than this close at a quiet moment; None = never.
    pub max_age_ms: Option<u64>,
    pub max_age_jitter_ms: u64,
    /// Picks use the client's address (`hash`): read it at accept.
    pub needs_client_addr: bool,
    /// Client bytes kept for a replay until the backend's first byte; 0 = no replay.
    pub replay_buffer: u32,
    /// No backend byte this long after the first request byte: a failure; 0 = off.
    pub first_byte_timeout_ms: u64,
    /// A PROXY protocol header goes to the backend ahead of the client's bytes.
    pub send_proxy: Option<ProxyVersion>,
    /// `count = "generating"`: a stream whose backend is silent this long is counted idle on
    /// it; 0 = streams are not told apart.
    pub idle_after_ms: u64,
}

/// The engine's view of the whole config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub pools: Vec<PoolPolicy>,
    pub max_unsent: u32,
    /// Pool names by index and listener names by config index, for log lines.
    pub pool_names: Vec<String>,
    pub listener_names: Vec<String>,
    /// The pool of each listener, by the listener's index at start.
    pub listener_pools: Vec<usize>,
    /// The routing table of each listener, by the same index (one that needs no peek routes
    /// everything to the listener's pool).
    pub listener_routes: Vec<Arc<Routes>>,
    /// Bytes the connections a worker is peeking at may hold together.
    pub peek_memory_max: u64,
    pub access_log: bool,
    /// A progress line per open stream this often; 0 = none.
    pub access_log_interval_ms: u64,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            pools: config
                .pools
                .iter()
                .map(|p| PoolPolicy {
                    connect_timeout_ms: ms(p.connect_timeout),
                    idle_timeout_ms: ms(p.idle_timeout),
                    half_close_timeout_ms: ms(p.half_close_timeout),
                    retries: p.retries,
                    queue_size: p.queue_size,
                    queue_timeout_ms: ms(p.queue_timeout),
                    queue_when_all_down: p.queue_when_all_down,
                    max_age_ms: p.max_connection_age.map(ms),
                    max_age_jitter_ms: ms(p.max_connection_age_jitter),
                    // `send_proxy` tells the backend the client's address.
                    needs_client_addr: p.balance == Balance::Hash || p.send_proxy.is_some(),
                    replay_buffer: p.failover.replay_buffer,
                    first_byte_timeout_ms: ms(p.failover.first_byte_timeout),
                    send_proxy: p.send_proxy,
                    idle_after_ms: match p.count {
                        Count::Generating { idle_after, .. } => ms(idle_after),
                        Count::Streams => 0,
                    },
                })
                .collect(),
            max_unsent: config.runtime.max_unsent,
            pool_names: config.pools.iter().map(|p| p.name.clone()).collect(),
            listener_names: config.listeners.iter().map(|l| l.name.clone()).collect(),
            listener_pools: config.listeners.iter().map(|l| l.pool).collect(),
            listener_routes: (0..config.listeners.len())
                .map(|i| config.listener_routes(i))
                .collect(),
            peek_memory_max: config.runtime.peek_memory_max,
            access_log: config.runtime.access_log,
            access_log_interval_ms: ms(config.runtime.access_log_interval),
        }
    }
}

/// What the backend table needs from the config.
pub fn table_spec(config: &Config) -> TableSpec {
    TableSpec {
        pools: config
            .pools
            .iter()
            .map(|p| PoolSpec {
                name: p.name.clone(),
                strategy: match p.balance {
                    Balance::LeastConnections => StrategyKind::LeastConnections,
                    Balance::RoundRobin => StrategyKind::RoundRobin,
                    Balance::PowerOfTwo => StrategyKind::PowerOfTwo,
                    Balance::LeastLatency => StrategyKind::LeastLatency,
                    Balance::Random => StrategyKind::Random,
                    Balance::Hash => StrategyKind::Hash,
                    Balance::LeastLoad => StrategyKind::LeastLoad,
                },
                backends: p
                    .backends
                    .iter()
                    .map(|b| BackendSpec {
                        addr: b.addr,
                        weight: b.weight,
                        max_connections: b.max_connections,
                        tier: b.tier,
                        drain: false,
                    })
                    .collect(),
                hash_key: match p.hash_key {
                    HashKey::ClientIp => crate::balance::HashKey::ClientIp,
                    HashKey::ClientIpPort => crate::balance::HashKey::ClientIpPort,
                },
                hash_balance_factor: p.hash_balance_factor,
                latency_decay: p.latency_decay,
                slow_start: p.slow_start,
                passive: Some(crate::health::passive_policy(&p.passive)),
                check: crate::health::active_check(p.health.as_ref()),
                count: match p.count {
                    Count::Streams => CountMode::Streams,
                    Count::Generating { idle_weight, .. } => CountMode::Generating {
                        idle_permille: (idle_weight * 1000.0).round() as u32,
                    },
                },
                least_load: LeastLoadSpec {
                    queue_weight: p.least_load.queue_weight,
                    kv_weight: p.least_load.kv_weight,
                    kv_full: p.least_load.kv_full,
                    waiting_full: p.least_load.waiting_full,
                },
                engine: p.engine_metrics.clone(),
            })
            .collect(),
        health: HealthPolicy::default(),
    }
}
