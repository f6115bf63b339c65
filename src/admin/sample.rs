//! One reading of everything `/metrics` and `/status` show, taken once per request from the
//! [`Observer`](crate::engine::Observer) and the admin state: the table's snapshot, queue
//! lengths and waits per pool, each worker's counters, the config being served.
//!
//! Every value is an atomic load (see the observer's rules); the only lock is the admin
//! state's own, for a moment, to clone an `Arc` of the config. Values are consistent per field,
//! not across fields: a stream may end between two reads.

use std::sync::Arc;

use crate::balance::{BackendSnapshot, HealthState};
use crate::config::Config;
use crate::engine::{StatsSnapshot, WaitSnapshot};

use super::overrides::Override;
use super::state::AdminState;

pub(super) struct Sample {
    pub config: Arc<Config>,
    pub pools: Vec<PoolSample>,
    pub workers: Vec<StatsSnapshot>,
    pub admitted: u32,
    pub max_connections: u32,
    pub reloads: u64,
    pub reload_failures: u64,
    pub started_unix_s: f64,
    /// (name, bound address, pool name) per listener.
    pub listeners: Vec<(String, String, String)>,
    /// The I/O driver the workers run on, and why.
    pub io: crate::engine::IoChoice,
}

pub(super) struct PoolSample {
    pub name: String,
    /// The strategy's config name ("least_connections", ...).
    pub balance: &'static str,
    pub queue_size: u32,
    pub queue_len: u32,
    pub queue_wait: WaitSnapshot,
    pub backends: Vec<BackendSample>,
}

pub(super) struct BackendSample {
    pub snap: BackendSnapshot,
    /// The operator override in force, if any.
    pub set: Option<Override>,
    /// The DNS name (`host:port`) the address came from; None for a literal one.
    pub origin: Option<String>,
}

impl BackendSample {
    /// "draining" (operator), "down" (passive health) or "up".
    /// "up", "down" (by the active check or passive health), "unknown" (checked, no result
    /// yet) or "draining" (operator).
    pub fn state(&self) -> &'static str {
        if self.snap.draining {
            return "draining";
        }
        match self.snap.health {
            HealthState::Up => "up",
            HealthState::Unknown => "unknown",
            HealthState::Down(_) => "down",
            HealthState::Draining => "draining",
        }
    }
}

impl Sample {
    pub fn take(state: &AdminState) -> Sample {
        let observer = state.observer();
        let config = state.config();
        let table = observer.table().load_full();
        let now_ms = crate::clock::now_ms();
        let pools = table
            .snapshot(now_ms)
            .into_iter()
            .enumerate()
            .map(|(index, pool)| {
                let configured = config.pools.iter().find(|p| p.name == pool.name);
                let backends = pool
                    .backends
                    .into_iter()
                    .map(|snap| BackendSample {
                        set: state.override_of(&pool.name, snap.addr),
                        origin: state.origin_of(&pool.name, snap.addr),
                        snap,
                    })
                    .collect();
                PoolSample {
                    balance: configured.map_or("unknown", |p| p.balance.as_str()),
                    queue_size: configured.map_or(0, |p| p.queue_size),
                    queue_len: observer.queue_len(index),
                    queue_wait: observer.queue_wait(index).unwrap_or_default(),
                    name: pool.name,
                    backends,
                }
            })
            .collect();
        let listeners = observer
            .listeners()
            .iter()
            .map(|(name, addr)| {
                let pool = config
                    .listeners
                    .iter()
                    .find(|l| &l.name == name)
                    .and_then(|l| config.pools.get(l.pool))
                    .map_or(String::new(), |p| p.name.clone());
                (name.clone(), addr.to_string(), pool)
            })
            .collect();
        let (reloads, reload_failures) = state.reload_counts();
        Sample {
            pools,
            workers: observer.workers(),
            admitted: observer.admitted(),
            max_connections: observer.max_connections(),
            reloads,
            reload_failures,
            started_unix_s: state.started_unix_s(),
            listeners,
            io: observer.io().clone(),
            config,
        }
    }
}
