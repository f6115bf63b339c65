//! The `[[pool]]` keys beyond strategy, timeouts and retries: what tunes a strategy (`hash_key`,
//! its peeked forms parsed in `routes`,
//! `hash_balance_factor`, `latency_decay`, `slow_start`) and what the engine applies per pool
//! (`queue_size`, `queue_timeout`, `max_connection_age`, `max_connection_age_jitter`).
//!
//! Keys that only one strategy uses are accepted (and checked) with any strategy, so switching
//! `balance` never makes a file invalid. This must never let through a factor that leaves no
//! backend under its bounded load (<= 1.0), a zero decay (a division by zero), or a jitter
//! that could make a connection's age limit larger than twice the configured one.

use super::checks::Checker;
use super::error::ConfigError;
use super::format_duration;
use super::limits::*;
use super::raw::RawPool;
use super::HashKey;
use crate::route::SessionKey;
use std::time::Duration;

/// The checked values of those keys, defaults applied.
pub(super) struct PoolTuning {
    pub hash_key: HashKey,
    pub session_key: Option<SessionKey>,
    pub hash_balance_factor: f64,
    pub latency_decay: Duration,
    pub slow_start: Duration,
    pub queue_size: u32,
    pub queue_timeout: Duration,
    pub queue_when_all_down: bool,
    pub drain_timeout: Duration,
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_jitter: Duration,
}

pub(super) fn validate_tuning(
    check: &Checker,
    ctx: &str,
    p: &RawPool,
) -> Result<PoolTuning, ConfigError> {
    let (hash_key, session_key) = match &p.hash_key {
        None => (HashKey::default(), None),
        Some(value) => super::routes::hash_key(check, ctx, value)?,
    };
    let hash_balance_factor = check.float_above(
        &p.hash_balance_factor,
        ctx,
        "hash_balance_factor",
        (1.0, MAX_HASH_BALANCE_FACTOR),
        DEFAULT_HASH_BALANCE_FACTOR,
    )?;
    let latency_decay = check.timeout(
        &p.latency_decay,
        ctx,
        "latency_decay",
        DEFAULT_LATENCY_DECAY,
    )?;
    let slow_start =
        check.duration_or_zero(&p.slow_start, ctx, "slow_start", DEFAULT_SLOW_START)?;
    let queue_size = check.int(
        &p.queue_size,
        ctx,
        "queue_size",
        (0, i64::from(MAX_QUEUE_SIZE)),
        i64::from(DEFAULT_QUEUE_SIZE),
    )? as u32;
    let queue_timeout = check.timeout(
        &p.queue_timeout,
        ctx,
        "queue_timeout",
        DEFAULT_QUEUE_TIMEOUT,
    )?;
    let queue_when_all_down = match &p.when_all_down {
        None => false,
        Some(value) => match value.get_ref().as_str() {
            "close" => false,
            "queue" if queue_size > 0 => true,
            "queue" => {
                return Err(check.err(
                    &value.span(),
                    format!(
                        "{ctx}: `when_all_down` = \"queue\" needs a queue: set `queue_size` \
                         above 0"
                    ),
                ))
            }
            other => {
                return Err(check.err(
                    &value.span(),
                    format!(
                        "{ctx}: unknown `when_all_down` {other:?}; allowed: \"close\", \"queue\""
                    ),
                ))
            }
        },
    };
    let drain_timeout = check.duration_or_zero(
        &p.drain_timeout,
        ctx,
        "drain_timeout",
        DEFAULT_DRAIN_TIMEOUT,
    )?;
    let max_connection_age = match &p.max_connection_age {
        None => None,
        Some(value) => Some(check.duration(value, ctx, "max_connection_age", false)?),
    };
    let max_connection_age_jitter = check.duration_or_zero(
        &p.max_connection_age_jitter,
        ctx,
        "max_connection_age_jitter",
        DEFAULT_MAX_CONNECTION_AGE_JITTER,
    )?;
    if let Some(value) = &p.max_connection_age_jitter {
        let text = &value.get_ref().0;
        match max_connection_age {
            None if !max_connection_age_jitter.is_zero() => {
                return Err(check.err(
                    &value.span(),
                    format!(
                        "{ctx}: `max_connection_age_jitter` = {text:?} needs \
                         `max_connection_age`, which is not set"
                    ),
                ))
            }
            Some(age) if max_connection_age_jitter > age => {
                return Err(check.err(
                    &value.span(),
                    format!(
                        "{ctx}: `max_connection_age_jitter` must be at most \
                         `max_connection_age` ({}), got {text:?}",
                        format_duration(age)
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(PoolTuning {
        hash_key,
        session_key,
        hash_balance_factor,
        latency_decay,
        slow_start,
        queue_size,
        queue_timeout,
        queue_when_all_down,
        drain_timeout,
        max_connection_age,
        max_connection_age_jitter,
    })
}
