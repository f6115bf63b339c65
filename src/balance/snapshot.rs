//! Point-in-time copies of the table for stats and tests. Each field is read separately
//! (no global lock), so a snapshot taken under load is consistent per field, not as a whole.

use std::net::SocketAddr;

use super::counters::CountersSnapshot;

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
    pub active: u32,
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
}
