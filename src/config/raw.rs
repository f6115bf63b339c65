//! The config file's shape exactly as written: what serde reads from TOML, before any rule is
//! checked.
//!
//! Every key is optional here (even required ones) and keeps its byte span, so that
//! `validate` can report a missing key or a bad value with a message naming the key and the
//! table it belongs to. This layer must never apply defaults or judge values; unknown keys are
//! its only rejection (`deny_unknown_fields`), because a misspelt key silently ignored would
//! leave a default in place that the operator thinks they changed.

use super::route_matchers::RawRoute;
use super::size::RawSize;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// The whole file. Integers are read as `i64` (TOML's integer type) so that a negative or
/// oversized value reaches `validate` and gets a range message instead of a type error.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a TOML document with [runtime], [[listener]], [[pool]] and [admin] tables"
)]
pub(super) struct RawConfig {
    pub runtime: Option<RawRuntime>,
    #[serde(default)]
    pub listener: Vec<Spanned<RawListener>>,
    #[serde(default)]
    pub pool: Vec<Spanned<RawPool>>,
    pub admin: Option<Spanned<super::admin::RawAdmin>>,
}

/// `[runtime]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [runtime] table")]
pub(super) struct RawRuntime {
    pub workers: Option<Spanned<i64>>,
    pub pin_workers: Option<bool>,
    pub ring_entries: Option<Spanned<i64>>,
    pub buffer_size: Option<Spanned<i64>>,
    pub buffer_count: Option<Spanned<i64>>,
    pub max_unsent: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub access_log: Option<bool>,
    pub access_log_interval: Option<Spanned<RawDuration>>,
    pub shutdown_timeout: Option<Spanned<RawDuration>>,
    pub handover_socket: Option<Spanned<String>>,
    pub peek_memory_max: Option<Spanned<RawSize>>,
    pub io: Option<Spanned<String>>,
    pub dns_servers: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One `[[listener]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[listener]] table")]
pub(super) struct RawListener {
    pub name: Option<Spanned<String>>,
    pub bind: Option<Spanned<String>>,
    pub pool: Option<Spanned<String>>,
    pub backlog: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub peek_timeout: Option<Spanned<RawDuration>>,
    pub peek_max: Option<Spanned<RawSize>>,
    pub peek_body_max: Option<Spanned<RawSize>>,
    pub accept_proxy: Option<Spanned<bool>>,
    /// `[[listener.route]]`, in file order.
    #[serde(default)]
    pub route: Vec<Spanned<RawRoute>>,
}

/// One `[[pool]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[pool]] table")]
pub(super) struct RawPool {
    pub name: Option<Spanned<String>>,
    pub balance: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<RawDuration>>,
    pub idle_timeout: Option<Spanned<RawDuration>>,
    pub half_close_timeout: Option<Spanned<RawDuration>>,
    pub retries: Option<Spanned<i64>>,
    pub queue_size: Option<Spanned<i64>>,
    pub when_all_down: Option<Spanned<String>>,
    pub drain_timeout: Option<Spanned<RawDuration>>,
    pub queue_timeout: Option<Spanned<RawDuration>>,
    pub latency_decay: Option<Spanned<RawDuration>>,
    pub hash_key: Option<Spanned<String>>,
    pub hash_balance_factor: Option<Spanned<f64>>,
    pub slow_start: Option<Spanned<RawDuration>>,
    pub max_connection_age: Option<Spanned<RawDuration>>,
    pub max_connection_age_jitter: Option<Spanned<RawDuration>>,
    pub passive_failures: Option<Spanned<i64>>,
    pub replay_buffer: Option<Spanned<i64>>,
    pub first_byte_timeout: Option<Spanned<RawDuration>>,
    pub passive_backoff: Option<Spanned<RawDuration>>,
    pub passive_backoff_max: Option<Spanned<RawDuration>>,
    pub passive_early_close: Option<Spanned<bool>>,
    pub send_proxy: Option<Spanned<String>>,
    pub dns_refresh: Option<Spanned<RawDuration>>,
    pub health: Option<Spanned<RawHealth>>,
    pub count: Option<Spanned<String>>,
    pub idle_after: Option<Spanned<RawDuration>>,
    pub idle_weight: Option<Spanned<f64>>,
    pub least_load: Option<Spanned<super::load_aware::RawLeastLoad>>,
    pub engine_metrics: Option<Spanned<RawEngineMetrics>>,
    #[serde(default)]
    pub backend: Vec<Spanned<RawBackend>>,
}

/// A pool's `[pool.health]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [pool.health] table")]
pub(super) struct RawHealth {
    pub check: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    pub expect_body: Option<Spanned<String>>,
    pub interval: Option<Spanned<RawDuration>>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub rise: Option<Spanned<i64>>,
    pub fall: Option<Spanned<i64>>,
    pub on_down: Option<Spanned<String>>,
    pub start: Option<Spanned<String>>,
}

/// A pool's `[pool.engine_metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [pool.engine_metrics] table")]
pub(super) struct RawEngineMetrics {
    pub path: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub interval: Option<Spanned<RawDuration>>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub flavor: Option<Spanned<String>>,
    pub running: Option<Spanned<String>>,
    pub waiting: Option<Spanned<String>>,
    pub kv_usage: Option<Spanned<String>>,
    pub generation: Option<Spanned<String>>,
    pub stale_after: Option<Spanned<RawDuration>>,
    pub stall_after: Option<Spanned<RawDuration>>,
}

/// One `[[pool.backend]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[pool.backend]] table")]
pub(super) struct RawBackend {
    pub addr: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub tier: Option<Spanned<i64>>,
    pub dns_refresh: Option<Spanned<RawDuration>>,
}

/// A duration as written. Its own type only so that `timeout = 3` is answered with "expected
/// a duration string such as "3s"" rather than serde's bare "expected a string".
#[derive(Debug)]
pub(super) struct RawDuration(pub String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"3s\", \"250ms\" or \"1h\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}
