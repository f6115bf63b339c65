//! ringlb's configuration: a TOML file read into typed, validated values.
//!
//! Two layers: `raw` mirrors the file (serde, unknown keys rejected, byte spans kept), and
//! `validate` applies defaults and rules to produce a [`Config`]. Any problem becomes one
//! [`ConfigError`] line of the form `file:line:column: message` naming the offending key.
//!
//! This module must never hand the engine a value it has not checked, never resolve host
//! names (a backend named by DNS is kept as a name; `crate::dns` resolves it), and never panic
//! on any input text.

mod addr;
mod admin;
mod binds;
mod checks;
mod dns;
mod duration;
mod engine_metrics;
mod error;
mod failover;
mod handover;
mod health;
mod io;
mod limits;
mod load_aware;
mod overflow;
mod pools;
mod raw;
mod route_matchers;
mod routes;
mod size;
mod summary;
mod tuning;
mod validate;

pub use admin::MIN_TOKEN_LEN;
pub use binds::BindSite;
pub use dns::{DEFAULT_DNS_REFRESH, DNS_PORT, MIN_DNS_REFRESH};
pub use duration::{format_duration, parse_duration};
pub use engine_metrics::{
    DEFAULT_ENGINE_INTERVAL, DEFAULT_ENGINE_PATH, DEFAULT_ENGINE_STALE_AFTER,
    DEFAULT_ENGINE_STALL_AFTER, DEFAULT_ENGINE_TIMEOUT,
};
pub use error::ConfigError;
pub use failover::{Failover, DEFAULT_REPLAY_BUFFER, MAX_REPLAY_BUFFER};
pub use handover::{MAX_HANDOVER_PATH, SUGGESTED_HANDOVER_SOCKET};
pub use health::{
    CheckKind, CheckStart, HealthCheck, OnDown, PassiveHealth, DEFAULT_CHECK_INTERVAL,
    DEFAULT_CHECK_PATH, DEFAULT_CHECK_TIMEOUT, DEFAULT_EXPECT_STATUS, DEFAULT_FALL,
    DEFAULT_PASSIVE_BACKOFF, DEFAULT_PASSIVE_BACKOFF_MAX, DEFAULT_PASSIVE_FAILURES, DEFAULT_RISE,
    MAX_PASSIVE_FAILURES, MAX_RISE_FALL, MIN_CHECK_INTERVAL,
};
pub use io::IoMode;
pub use limits::*;
pub use load_aware::{Count, LeastLoad, DEFAULT_IDLE_AFTER, DEFAULT_IDLE_WEIGHT};
pub use size::format_size;

use crate::route::{ProxyVersion, Routes, SessionKey};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A complete, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub runtime: Runtime,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
    /// The admin API (`[admin]`); None = off.
    pub admin: Option<Admin>,
    /// The content-routing table of each listener, by index: `routes[i]` is
    /// `listeners[i]`'s (its rules, peek limits and the session keys of the pools it reaches;
    /// pool indexes into `pools`). Kept beside `listeners` rather than in [`Listener`] so
    /// that code building listeners by hand is unchanged; read it with
    /// [`Config::listener_routes`], which also covers a config built with fewer entries.
    pub routes: Vec<Arc<Routes>>,
    /// BLAKE3 of the config file's bytes, its first 48 bits (exact in a metric's float) as 12
    /// hex digits: tells which config a running process has. Empty for configs built in code.
    pub digest: String,
}

/// The admin API (`[admin]`).
#[derive(Clone, Debug)]
pub struct Admin {
    pub bind: SocketAddr,
    /// Bearer token required on every endpoint (see `metrics_public`); always set for a
    /// non-loopback `bind`.
    pub token: Option<String>,
    /// `/metrics` answers without the token.
    pub metrics_public: bool,
}

/// Process-wide engine settings (`[runtime]`).
#[derive(Clone, Debug)]
pub struct Runtime {
    /// Worker threads, one io_uring ring (or epoll instance) each; a configured 0 is resolved
    /// to the CPU count.
    pub workers: usize,
    /// Which I/O driver the workers use (`auto`: io_uring where the host allows it).
    pub io: IoMode,
    /// Pin worker i to CPU i; failure to pin is logged, never fatal.
    pub pin_workers: bool,
    /// Submission queue entries per ring; a power of two.
    pub ring_entries: u32,
    /// Bytes per provided receive buffer.
    pub buffer_size: u32,
    /// Provided receive buffers per worker; a power of two.
    pub buffer_count: u32,
    /// Bytes received from one side and not yet sent to the other, above which ringlb stops
    /// reading that side (backpressure). At least `buffer_size`.
    pub max_unsent: u32,
    /// Client connections the whole server holds at most; 0 = as many as the open files
    /// limit allows (two descriptors per stream).
    pub max_connections: u32,
    /// One log line per stream at close (target `ringlb::access`).
    pub access_log: bool,
    /// Streams open longer than this also log a progress line every interval; 0 = never.
    pub access_log_interval: Duration,
    /// On SIGTERM/SIGINT, how long live streams may go on before the rest are reset; 0 = at once.
    pub shutdown_timeout: Duration,
    /// The unix socket served for a hand-over to a new process (`ringlb run --take-over`);
    /// None = off. Absolute, and short enough for a socket address.
    pub handover_socket: Option<std::path::PathBuf>,
    /// Bytes all peeking connections of one worker may hold together (`peek_memory_max`);
    /// past it new connections wait their turn to peek. At least every listener's
    /// `Routes::peek_bytes_max`.
    pub peek_memory_max: u64,
    /// The DNS servers that resolve backend names (`dns_servers`); empty = the system's
    /// (/etc/resolv.conf, with /etc/hosts).
    pub dns_servers: Vec<SocketAddr>,
}

/// One listening socket (`[[listener]]`).
#[derive(Clone, Debug)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    /// Index into [`Config::pools`].
    pub pool: usize,
    pub backlog: u32,
    /// Client connections this listener holds at most (all workers); 0 = only the server's
    /// limit applies.
    pub max_connections: u32,
}

/// A named group of backends sharing a balance strategy (`[[pool]]`).
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub balance: Balance,
    /// Longest wait for a backend connect before trying another.
    pub connect_timeout: Duration,
    /// A relayed connection with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// A stream one side has half closed (FIN) is closed after this long without a byte.
    pub half_close_timeout: Duration,
    /// Other backends tried after a failed connect.
    pub retries: u32,
    /// The backends with a literal address. With `names`, never both empty (a file that
    /// validates names at least one backend; a pool a reload removed has neither).
    pub backends: Vec<Backend>,
    /// The backend entries whose `addr` is a DNS name: each address the name resolves to is a
    /// backend (see `crate::dns`).
    pub names: Vec<NamedBackend>,
    /// What `hash` hashes (any strategy accepts it; only `hash` uses it). With a peeked
    /// `session_key` this is the fallback, `client_ip`, for connections that lack the value.
    pub hash_key: HashKey,
    /// `hash_key = "header:<name>"` / `"json:<key>"`: the value the peek hashes instead of
    /// the client address (the engine passes the peek's hash to the pick); None = none.
    pub session_key: Option<SessionKey>,
    /// `send_proxy`: the PROXY protocol header sent to this pool's backends before the
    /// client's bytes; None = none.
    pub send_proxy: Option<ProxyVersion>,
    /// `hash`: load bound relative to a backend's fair share, in (1.0, 10.0].
    pub hash_balance_factor: f64,
    /// `least_latency`: decay time constant of the latency estimates; > 0.
    pub latency_decay: Duration,
    /// Ramp time of a backend that comes back up or is added on reload; zero = off.
    pub slow_start: Duration,
    /// Clients that may wait for a slot while every backend is full; 0 = none wait.
    pub queue_size: u32,
    /// Longest such a wait; > 0.
    pub queue_timeout: Duration,
    /// `when_all_down = "queue"`: while no backend of any tier is up, new clients wait in the
    /// queue (as when all are full) instead of being closed at once.
    pub queue_when_all_down: bool,
    /// A backend a reload removes keeps its live streams this long, then they are reset
    /// (reason `drained`); 0 = at once.
    pub drain_timeout: Duration,
    /// Connections older than this are closed; None = never. > 0 when set.
    pub max_connection_age: Option<Duration>,
    /// Random extra age per connection, at most `max_connection_age`; zero without it.
    pub max_connection_age_jitter: Duration,
    /// When connect failures (and early closes) take a backend out, and for how long.
    pub passive: PassiveHealth,
    /// The active check (`[pool.health]`); None = no active check.
    pub health: Option<HealthCheck>,
    /// The engine-metrics scrape (`[pool.engine_metrics]`); None = not scraped.
    pub engine_metrics: Option<crate::balance::EngineScrape>,
    /// Replay to another backend, and the first-byte timeout (`replay_buffer`,
    /// `first_byte_timeout`).
    pub failover: Failover,
    /// What `least_connections` and `least_load` count a stream as (`count`, `idle_after`,
    /// `idle_weight`).
    pub count: Count,
    /// `[pool.least_load]`: how `least_load` weighs the engine's figures.
    pub least_load: LeastLoad,
}

/// One upstream server (`[[pool.backend]]`).
#[derive(Clone, Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// Relative share of new connections, 1..=[`MAX_WEIGHT`].
    pub weight: u32,
    /// Concurrent connections (streams) allowed; 0 means unlimited.
    pub max_connections: u32,
    /// Fallback tier, 0..=[`MAX_TIER`]: lower tiers are used first, higher ones take only the
    /// overflow. 0 = primary.
    pub tier: u32,
}

/// A `[[pool.backend]]` whose `addr` is `name:port`: every address the name resolves to is a
/// backend with these settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedBackend {
    /// Lowercase, without a trailing dot.
    pub host: String,
    /// Nonzero.
    pub port: u16,
    pub weight: u32,
    pub max_connections: u32,
    pub tier: u32,
    /// Resolved again this often (`dns_refresh`, the entry's or its pool's); at least
    /// [`MIN_DNS_REFRESH`].
    pub refresh: Duration,
}

impl NamedBackend {
    /// `host:port`, as logs and the status show the name.
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The backend one resolved address of this entry is.
    pub fn backend(&self, ip: std::net::IpAddr) -> Backend {
        Backend {
            addr: SocketAddr::new(ip, self.port),
            weight: self.weight,
            max_connections: self.max_connections,
            tier: self.tier,
        }
    }
}

/// How a pool picks the backend for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Fewest active connections relative to weight; suits long, uneven inference streams.
    LeastConnections,
    /// Each backend in turn, in proportion to weight.
    RoundRobin,
    /// The less loaded of two weighted random backends.
    PowerOfTwo,
    /// Lowest connect + first-byte latency (peak EWMA) times active streams.
    LeastLatency,
    /// Weighted random.
    Random,
    /// Consistent hashing of the client address, with bounded load.
    Hash,
    /// Lowest blended load: our streams, the engine's own running and waiting requests and
    /// KV-cache usage (`[pool.engine_metrics]`); plain least connections where that is stale.
    LeastLoad,
}

impl Balance {
    /// Every strategy, in the order the docs list them.
    pub const ALL: [Balance; 7] = [
        Balance::LeastConnections,
        Balance::LeastLoad,
        Balance::RoundRobin,
        Balance::PowerOfTwo,
        Balance::LeastLatency,
        Balance::Random,
        Balance::Hash,
    ];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::LeastConnections => "least_connections",
            Balance::RoundRobin => "round_robin",
            Balance::PowerOfTwo => "power_of_two",
            Balance::LeastLatency => "least_latency",
            Balance::Random => "random",
            Balance::Hash => "hash",
            Balance::LeastLoad => "least_load",
        }
    }

    /// The strategy a config name denotes, if any.
    pub fn from_name(name: &str) -> Option<Balance> {
        Balance::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `balance = "hash"` hashes to place a client, from the connection's addresses.
///
/// The peeked forms `hash_key = "header:<name>"` and `"json:<key>"` are not variants here:
/// they live in [`Pool::session_key`], and `hash_key` is then `ClientIp`, the fallback for a
/// connection that lacks the value. The engine maps this enum onto the balance table's own,
/// exhaustively, and the peek's hash reaches the pick apart from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashKey {
    /// The client IP: all connections of one host share a backend (and its KV cache).
    #[default]
    ClientIp,
    /// IP and source port: each connection is placed on its own.
    ClientIpPort,
}

impl HashKey {
    pub const ALL: [HashKey; 2] = [HashKey::ClientIp, HashKey::ClientIpPort];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            HashKey::ClientIp => "client_ip",
            HashKey::ClientIpPort => "client_ip_port",
        }
    }

    /// The key a config name denotes, if any.
    pub fn from_name(name: &str) -> Option<HashKey> {
        HashKey::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// The routing table of listener `index`; a listener without one (a config built in code)
    /// gets a table that never peeks and sends everything to its pool.
    pub fn listener_routes(&self, index: usize) -> Arc<Routes> {
        match self.routes.get(index) {
            Some(r) => r.clone(),
            None => Arc::new(Routes::passthrough(
                self.listeners.get(index).map_or(0, |l| l.pool),
            )),
        }
    }
}

/// Reads and parses the config file at `path`; messages name the file as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_binds(path).map(|(config, _)| config)
}

/// [`load`], and every address the config asks to bind, located in the file.
pub fn load_with_binds(path: &Path) -> Result<(Config, Vec<BindSite>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_with_binds(&text, &path.display().to_string())
}

/// Parses and validates config `text`; `origin` is the file name used in error messages.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with_binds(text, origin).map(|(config, _)| config)
}

/// [`parse`], and every address the config asks to bind, located in the text.
pub fn parse_with_binds(text: &str, origin: &str) -> Result<(Config, Vec<BindSite>), ConfigError> {
    let mut locator = error::Locator::new(origin, text);
    let read = overflow::read_raw(text, &locator)?;
    locator.set_literals(read.literals);
    let mut config = validate::validate(&read.raw, &locator)?;
    if let Some(e) = read.parse_error {
        // A stand-in for an oversized integer passed validation: never run on it.
        return Err(e);
    }
    config.digest = digest(text.as_bytes());
    let sites = binds::sites(&read.raw, &config, &locator);
    Ok((config, sites))
}

/// The 48-bit BLAKE3 prefix of `bytes` as 12 hex digits (see [`Config::digest`]).
pub fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_string()
}
