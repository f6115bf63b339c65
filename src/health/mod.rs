//! Active health checks: the control plane's checker probes every backend of every pool that
//! has a `[pool.health]` (TCP connect, HTTP `GET` with expected status and body, or a
//! WebSocket handshake), turns the results into up and down with rise/fall hysteresis, and
//! publishes the state in the backend's shared state, where every pick reads it with one
//! atomic load. Each transition is logged once, with the pool, the backend and the reason.
//!
//! Exactly one check per backend per interval runs for the whole process (not one per
//! worker), at a random phase so backends are not probed in lock step. The checker follows
//! the shared table: a reload that adds, removes or changes checks is picked up within
//! [`checker::RECONCILE_EVERY`].
//!
//! The engine-metrics scraper (`engine_metrics`) runs beside the checker the same way, one
//! scrape per backend per interval of every pool with `[pool.engine_metrics]`: it publishes
//! each engine's own load (running, waiting, KV usage) for picks to read, and takes a stalled
//! engine (requests running, generation counter still) out of picks.
//!
//! This module runs on the control plane's runtime only: it must never run on, block or be
//! waited on by an engine worker, never take a lock the pick path takes, and never panic on
//! anything a backend sends.

mod checker;
mod engine_flavor;
mod engine_metrics;
mod engine_stall;
mod probe;
mod probe_http;
mod probe_ws;
mod state;

pub use checker::Checker;
pub use engine_metrics::{EngineScraper, ScrapeError, MAX_SCRAPE_BODY};
pub use probe::{probe, ProbeError};

use crate::balance::{ActiveCheck, CheckStart, HealthPolicy, OnDown, Probe};
use crate::config;

/// The table's passive policy for a pool's validated `passive_*` keys.
pub fn passive_policy(passive: &config::PassiveHealth) -> HealthPolicy {
    HealthPolicy {
        fail_threshold: passive.failures,
        backoff_min: passive.backoff,
        backoff_max: passive.backoff_max,
        early_close: passive.early_close,
    }
}

/// The table's active check for a pool's validated `[pool.health]`, if any.
pub fn active_check(health: Option<&config::HealthCheck>) -> Option<ActiveCheck> {
    let h = health?;
    let probe = match h.check {
        config::CheckKind::Tcp => Probe::Tcp,
        config::CheckKind::Http => Probe::Http {
            path: h.path.clone(),
            expect_status: h.expect_status.clone(),
            expect_body: h.expect_body.clone(),
        },
        config::CheckKind::WebSocket => Probe::WebSocket {
            path: h.path.clone(),
        },
    };
    Some(ActiveCheck {
        probe,
        interval: h.interval,
        timeout: h.timeout,
        rise: h.rise,
        fall: h.fall,
        on_down: match h.on_down {
            config::OnDown::Keep => OnDown::Keep,
            config::OnDown::Reset => OnDown::Reset,
        },
        start: match h.start {
            config::CheckStart::Up => CheckStart::Up,
            config::CheckStart::Unknown => CheckStart::Unknown,
        },
    })
}
