//! ringlb's configuration: a TOML file read into typed, validated values.
//!
//! Two layers: `raw` mirrors the file (serde, unknown keys rejected, byte spans kept), and
//! `validate` applies defaults and rules to produce a [`Config`]. Any problem becomes one
//! [`ConfigError`] line of the form `file:line:column: message` naming the offending key.
//!
//! This module must never hand the engine a value it has not checked, never resolve host
//! names, and never panic on any input text.

mod checks;
mod duration;
mod error;
mod limits;
mod pools;
mod raw;
mod summary;
mod validate;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use limits::*;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A complete, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub runtime: Runtime,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
}

/// Process-wide engine settings (`[runtime]`).
#[derive(Clone, Debug)]
pub struct Runtime {
    /// Worker threads, one io_uring ring each; a configured 0 is resolved to the CPU count.
    pub workers: usize,
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
}

/// One listening socket (`[[listener]]`).
#[derive(Clone, Debug)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    /// Index into [`Config::pools`].
    pub pool: usize,
    pub backlog: u32,
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
    /// Other backends tried after a failed connect.
    pub retries: u32,
    /// Never empty.
    pub backends: Vec<Backend>,
}

/// One upstream server (`[[pool.backend]]`).
#[derive(Clone, Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// Relative share of new connections, 1..=[`MAX_WEIGHT`].
    pub weight: u32,
    /// Concurrent connections allowed; 0 means unlimited.
    pub max_connections: u32,
}

/// How a pool picks the backend for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Fewest active connections relative to weight; suits long, uneven inference streams.
    LeastConnections,
    /// Each backend in turn, in proportion to weight.
    RoundRobin,
}

impl Balance {
    /// Every strategy, in the order the docs list them.
    pub const ALL: [Balance; 2] = [Balance::LeastConnections, Balance::RoundRobin];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::LeastConnections => "least_connections",
            Balance::RoundRobin => "round_robin",
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

/// Reads and parses the config file at `path`; messages name the file as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates config `text`; `origin` is the file name used in error messages.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let locator = error::Locator::new(origin, text);
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| locator.syntax(&e))?;
    validate::validate(&raw, &locator)
}
