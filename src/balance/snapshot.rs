//! Point-in-time copies of the table for stats and tests. Each field is read separately
//! (no global lock), so a snapshot taken under load is consistent per field, not as a whole.

use std::net::SocketAddr;

use super::check_state::{CheckFailure, CheckStatus};
use super::counters::CountersSnapshot;
use super::engine_load::EngineReading;

/// One pool as seen at snapshot time.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSnapshot {
    pub name: String,
    pub backends: Vec<BackendSnapshot>,
}

/// One backend as seen at snapshot time.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendSnapshot {
    pub addr: SocketAddr,
    /// The weight picks use: the configured one, 0 while draining.
    pub weight: u32,
    pub max_connections: u32,
    /// This process's own streams on the backend.
    pub active: u32,
    /// Of `active`, the streams counted idle (`count = "generating"`: the backend silent for
    /// the pool's `idle_after`); 0 in pools that do not tell them apart.
    pub idle: u32,
    /// Streams a draining predecessor process reports on it (hand-over); 0 without one.
    /// Strategies weigh `active + foreign`.
    pub foreign: u32,
    pub down: bool,
    pub consecutive_failures: u32,
    pub tier: u32,
    /// Drained by an operator: live streams go on, no new ones.
    pub draining: bool,
    /// Current peak-EWMA estimate of connect time + time to first byte in ms (the parts that
    /// have samples); None before any sample.
    pub latency_ms: Option<f64>,
    /// `weight` scaled by the slow-start ramp, rounded down but at least 1 (0 if drained).
    /// Picks use the exact per-mille value, so a weight-1 backend ramps even though this
    /// shows 1 throughout.
    pub effective_weight: u32,
    /// Bytes, streams by close reason, connect failures and latency histograms so far.
    pub counters: CountersSnapshot,
    /// What the pool's active check says (`NotChecked` without one).
    pub check: CheckStatus,
    /// Health and the operator's drain in one word: what an admin page shows.
    pub health: HealthState,
    /// The engine's own load from its last fresh scrape; None without `[pool.engine_metrics]`
    /// or when the last reading is stale.
    pub engine: Option<EngineReading>,
    /// The pool scrapes this backend's engine metrics (`[pool.engine_metrics]`).
    pub engine_scraped: bool,
    /// The engine reports requests running but its generation counter stopped moving (also
    /// while another cause takes the backend down, which `health` shows first).
    pub engine_stalled: bool,
}

/// A backend's health as a state of its own, next to the operator's drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Takes streams.
    Up,
    /// Checked, no result yet: takes no stream until its first check passes.
    Unknown,
    /// Takes no new stream, for this reason.
    Down(DownCause),
    /// Weight 0 (drained by the operator): no new stream, whatever its health.
    Draining,
}

/// Who took a backend down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownCause {
    /// The active check, for this reason.
    Check(CheckFailure),
    /// Passive health: connect failures (or early closes) in a row; skipped until its backoff
    /// ends.
    Passive,
    /// The engine reports requests running but its generation counter stopped moving.
    Stalled,
}

impl HealthState {
    pub(crate) fn of(
        weight: u32,
        check: CheckStatus,
        passive_down: bool,
        stalled: bool,
    ) -> HealthState {
        match check {
            _ if weight == 0 => HealthState::Draining,
            CheckStatus::Down(why) => HealthState::Down(DownCause::Check(why)),
            CheckStatus::Unknown => HealthState::Unknown,
            _ if passive_down => HealthState::Down(DownCause::Passive),
            _ if stalled => HealthState::Down(DownCause::Stalled),
            _ => HealthState::Up,
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthState::Up => f.write_str("up"),
            HealthState::Unknown => f.write_str("unknown"),
            HealthState::Down(DownCause::Check(why)) => write!(f, "down (check: {why})"),
            HealthState::Down(DownCause::Passive) => f.write_str("down (passive)"),
            HealthState::Down(DownCause::Stalled) => f.write_str("down (stalled)"),
            HealthState::Draining => f.write_str("draining"),
        }
    }
}
