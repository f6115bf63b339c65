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
    /// This pool's passive health policy; None = the table's (`TableSpec::health`).
    pub passive: Option<HealthPolicy>,
    /// Active health checks of this pool's backends; None = not checked (always up as far as
    /// checks go).
    pub check: Option<ActiveCheck>,
    /// What `least_connections` and `least_load` count a stream as.
    pub count: CountMode,
    /// How `least_load` weighs the engine's figures.
    pub least_load: LeastLoadSpec,
    /// The control plane scrapes each backend's engine metrics (`[pool.engine_metrics]`);
    /// None = not scraped.
    pub engine: Option<super::EngineScrape>,
}

/// What a stream counts as in `least_connections` and `least_load`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CountMode {
    /// Every open stream counts 1.
    #[default]
    Streams,
    /// A stream counted idle (its backend silent for the pool's `idle_after`; the engine keeps
    /// track) counts this many thousandths of a busy one.
    Generating { idle_permille: u32 },
}

/// The weights of a `least_load` score (see `strategy/least_load.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeastLoadSpec {
    /// One request in the engine's queue weighs this many running ones.
    pub queue_weight: f64,
    /// The score is multiplied by `1 + kv_weight * kv_usage^2`.
    pub kv_weight: f64,
    /// KV usage from which the backend counts as full.
    pub kv_full: f64,
    /// Engine queue length from which the backend counts as full; 0 = never.
    pub waiting_full: u32,
}

impl Default for LeastLoadSpec {
    fn default() -> Self {
        LeastLoadSpec {
            queue_weight: 4.0,
            kv_weight: 1.0,
            kv_full: 0.98,
            waiting_full: 0,
        }
    }
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
    /// Lowest blended load per weight from our streams and the engine's own figures.
    LeastLoad,
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
    /// A stream the backend resets before sending its first byte counts as a failure too
    /// (a server that accepts, then closes every stream).
    pub early_close: bool,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            fail_threshold: DEFAULT_FAIL_THRESHOLD,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            early_close: false,
        }
    }
}

/// Active health checks of one pool: what the control plane's checker (`crate::health`) probes
/// and how results turn into up and down. Plain data, kept in the table so that a reload that
/// changes it is followed by the checker; picks only read the state it publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveCheck {
    pub probe: Probe,
    /// One check per backend per interval, for the whole process.
    pub interval: Duration,
    /// A check that has not finished after this long fails (`timeout`); at most `interval`.
    pub timeout: Duration,
    /// Consecutive passes that bring a down backend back up (at least 1).
    pub rise: u32,
    /// Consecutive failures that take an up backend down (at least 1).
    pub fall: u32,
    /// What happens to the live streams of a backend the check takes down.
    pub on_down: OnDown,
    /// The state of a backend before its first check result.
    pub start: CheckStart,
}

/// What one check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect that completes passes.
    Tcp,
    /// `GET path` over HTTP/1.1: the status must be one of `expect_status` and, if set, the
    /// body must contain `expect_body`.
    Http {
        path: String,
        expect_status: Vec<u16>,
        expect_body: Option<String>,
    },
    /// A WebSocket handshake on `path` that the server accepts (101) passes.
    WebSocket { path: String },
}

/// Live streams of a backend an active check takes down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDown {
    /// Keep them: only new streams avoid the backend.
    #[default]
    Keep,
    /// Reset them (both sides), so clients reconnect to a healthy backend.
    Reset,
}

/// A backend's state before its first check result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckStart {
    /// Takes streams at once; `fall` failures take it down.
    Up,
    /// Takes no stream until its first check passes (one failure makes it down).
    #[default]
    Unknown,
}
