//! Plain input structs for [`Table::build`](super::Table::build): the engine fills them from the
//! validated config. They carry no behaviour and must never depend on the config module, so the
//! table can be built (and tested) without parsing TOML.

use std::net::SocketAddr;
use std::time::Duration;

/// Three failures in a row: one failure is often a transient (a SYN lost, a restart in
/// progress); three in a row means the backend is really not accepting.
pub const DEFAULT_FAIL_THRESHOLD: u32 = 3;
/// One second: long enough to stop hammering a dead backend with every new client, short enough
/// that a backend which only blipped gets traffic back almost at once.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Thirty seconds: an inference server that is loading a model may take minutes, but probing it
/// at most every 30 s costs nothing and bounds how long a recovered backend stays unused.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Everything the table needs: the pools and the passive-health policy.
#[derive(Clone, Debug, Default)]
pub struct TableSpec {
    pub pools: Vec<PoolSpec>,
    pub health: HealthPolicy,
}

/// One pool of backends and how to pick among them.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    pub name: String,
    pub strategy: StrategyKind,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// How many other backends to try after a failed connect.
    pub retries: u32,
    pub backends: Vec<BackendSpec>,
}

/// One backend of a pool. Its identity across rebuilds is (pool name, `addr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 means draining: never picked, live connections kept.
    pub weight: u32,
    /// Most connections open at once through this balancer; 0 means unlimited.
    pub max_connections: u32,
}

/// Which strategy a pool uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    /// Lowest active connections per unit of weight; suits long, uneven LLM streams.
    LeastConnections,
    /// Smooth weighted round robin (nginx style); suits short, uniform requests.
    RoundRobin,
}

/// Passive health: when a backend is taken out after connect failures, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive connect failures that mark a backend down; 0 disables marking down.
    pub fail_threshold: u32,
    /// First down period; it doubles on each failure after a down period ends.
    pub backoff_min: Duration,
    /// The doubling stops here.
    pub backoff_max: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            fail_threshold: DEFAULT_FAIL_THRESHOLD,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}
