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

/// One pool of backends and how to pick among them. (What the engine applies per pool,
/// timeouts, retries, the queue, lives in the engine's own policy.)
#[derive(Clone, Debug)]
pub struct PoolSpec {
    pub name: String,
    pub strategy: StrategyKind,
    pub backends: Vec<BackendSpec>,
    /// What `hash` hashes to place a client on the ring.
    pub hash_key: HashKey,
    /// `hash`: no backend takes more than this times its weighted share of the pool's active
    /// connections (+1). Values below 1.0 (or NaN) are treated as 1.0.
    pub hash_balance_factor: f64,
    /// `least_latency`: time constant of the peak-EWMA decay. Zero is treated as 1 ms.
    pub latency_decay: Duration,
    /// A backend that comes back up, or joins the pool on a reload, ramps its effective weight
    /// from 10% to 100% over this long. Zero turns slow start off.
    pub slow_start: Duration,
}

/// One backend of a pool. Its identity across rebuilds is (pool name, `addr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 means draining: never picked, live connections kept.
    pub weight: u32,
    /// Most connections (streams) open at once through this balancer; 0 means unlimited.
    pub max_connections: u32,
    /// Fallback tier: a pick uses the lowest tier with a backend that is up and not full, so
    /// higher tiers only take the overflow. 0 = primary.
    pub tier: u32,
    /// Drained by an operator: stays in the table (its live connections, count and health are
    /// kept and shown) but is never picked, as if its weight were 0.
    pub drain: bool,
}

/// Which strategy a pool uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    /// Lowest active connections per unit of weight; suits long, uneven LLM streams.
    LeastConnections,
    /// Smooth weighted round robin (nginx style); suits short, uniform requests.
    RoundRobin,
    /// Two weighted random candidates, the less loaded wins: near least-connections balance
    /// without scanning the pool.
    PowerOfTwo,
    /// Lowest peak-EWMA of connect time + time to first byte, times (active + 1).
    LeastLatency,
    /// Weighted random.
    Random,
    /// Consistent hashing of the client address with bounded load: a client keeps landing on
    /// the backend that holds its KV cache, unless that backend is overloaded.
    Hash,
}

/// What the `hash` strategy hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address: every connection of one host lands on one backend.
    #[default]
    ClientIp,
    /// IP and source port: spreads the connections of one host, keeps each one stable.
    ClientIpPort,
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
