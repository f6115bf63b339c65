//! Point-in-time copies of the table for stats and tests. Each field is read separately
//! (no global lock), so a snapshot taken under load is consistent per field, not as a whole.

use std::net::SocketAddr;

/// One pool as seen at snapshot time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSnapshot {
    pub name: String,
    pub backends: Vec<BackendSnapshot>,
}

/// One backend as seen at snapshot time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSnapshot {
    pub addr: SocketAddr,
    pub weight: u32,
    pub max_connections: u32,
    pub active: u32,
    pub down: bool,
    pub consecutive_failures: u32,
}
