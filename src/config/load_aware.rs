//! The `[[pool]]` keys of load-aware balancing: what a stream counts as (`count`,
//! `idle_after`, `idle_weight`) and how `least_load` weighs the engine's own figures
//! (`[pool.least_load]`). Like the other tuning keys they are accepted with any `balance`, so
//! switching strategy never makes a file invalid; only `least_connections` and `least_load`
//! read `count`, only `least_load` its table. This module only checks and types the keys; it
//! must never apply them (the table and the engine's policy do).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;
use super::health::one_of;
use super::raw::RawPool;
use crate::balance::MAX_IDLE_AFTER_MS;

/// A stream silent for 2 s is between turns (a chat session waiting for its user, an agent
/// waiting on a tool call): a token stream sends every few tens of milliseconds, and even a
/// long prefill rarely keeps the first token away that long once the request is running.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(2);
/// An idle session costs the engine almost nothing but may start a turn at any moment (and
/// holds its prefix cache): a tenth of a generating stream.
pub const DEFAULT_IDLE_WEIGHT: f64 = 0.1;
/// See `balance::strategy::least_load` for why these weights.
pub const DEFAULT_QUEUE_WEIGHT: f64 = 4.0;
pub const DEFAULT_KV_WEIGHT: f64 = 1.0;
pub const DEFAULT_KV_FULL: f64 = 0.98;
/// Weights above this would let one term drown every other; nobody needs them.
const MAX_FACTOR: f64 = 1000.0;

/// What `least_connections` and `least_load` count a stream as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    /// Every open stream counts 1.
    Streams,
    /// A stream whose backend has sent nothing for `idle_after` counts `idle_weight`.
    Generating {
        idle_after: Duration,
        idle_weight: f64,
    },
}

/// `[pool.least_load]`: the weights of the engine's figures in a `least_load` score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeastLoad {
    /// One request waiting in the engine's queue weighs this many running ones.
    pub queue_weight: f64,
    /// The score is multiplied by `1 + kv_weight * kv_usage^2`.
    pub kv_weight: f64,
    /// KV-cache usage at which the backend takes no new stream (as if at `max_connections`).
    pub kv_full: f64,
    /// Engine queue length at which the backend takes no new stream; 0 = never.
    pub waiting_full: u32,
}

impl Default for LeastLoad {
    fn default() -> Self {
        LeastLoad {
            queue_weight: DEFAULT_QUEUE_WEIGHT,
            kv_weight: DEFAULT_KV_WEIGHT,
            kv_full: DEFAULT_KV_FULL,
            waiting_full: 0,
        }
    }
}

/// A pool's `[pool.least_load]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [pool.least_load] table")]
pub(super) struct RawLeastLoad {
    pub queue_weight: Option<Spanned<f64>>,
    pub kv_weight: Option<Spanned<f64>>,
    pub kv_full: Option<Spanned<f64>>,
    pub waiting_full: Option<Spanned<i64>>,
}

pub(super) fn validate_count(
    check: &Checker,
    ctx: &str,
    p: &RawPool,
) -> Result<Count, ConfigError> {
    let generating = one_of(
        check,
        &p.count,
        ctx,
        "count",
        &[("streams", false), ("generating", true)],
        false,
    )?;
    let idle_after = check.timeout(&p.idle_after, ctx, "idle_after", DEFAULT_IDLE_AFTER)?;
    if let Some(value) = &p.idle_after {
        if idle_after.as_millis() > u128::from(MAX_IDLE_AFTER_MS) {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `idle_after` must be at most 1h, got {:?}",
                    value.get_ref().0
                ),
            ));
        }
    }
    let idle_weight = float_in(
        check,
        &p.idle_weight,
        ctx,
        "idle_weight",
        (0.0, 1.0),
        DEFAULT_IDLE_WEIGHT,
    )?;
    Ok(if generating {
        Count::Generating {
            idle_after,
            idle_weight,
        }
    } else {
        Count::Streams
    })
}

pub(super) fn validate_least_load(
    check: &Checker,
    ctx: &str,
    raw: Option<&Spanned<RawLeastLoad>>,
) -> Result<LeastLoad, ConfigError> {
    let Some(raw) = raw else {
        return Ok(LeastLoad::default());
    };
    let t = raw.get_ref();
    let ctx = format!("{ctx} [pool.least_load]");
    let ctx = ctx.as_str();
    Ok(LeastLoad {
        queue_weight: float_in(
            check,
            &t.queue_weight,
            ctx,
            "queue_weight",
            (0.0, MAX_FACTOR),
            DEFAULT_QUEUE_WEIGHT,
        )?,
        kv_weight: float_in(
            check,
            &t.kv_weight,
            ctx,
            "kv_weight",
            (0.0, MAX_FACTOR),
            DEFAULT_KV_WEIGHT,
        )?,
        kv_full: check.float_above(&t.kv_full, ctx, "kv_full", (0.0, 1.0), DEFAULT_KV_FULL)?,
        waiting_full: check.int(&t.waiting_full, ctx, "waiting_full", (0, 65_535), 0)? as u32,
    })
}

/// A float key within `[lo, hi]`, or `default` when absent; NaN refused.
fn float_in(
    check: &Checker,
    value: &Option<Spanned<f64>>,
    ctx: &str,
    key: &str,
    (lo, hi): (f64, f64),
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let v = *value.get_ref();
    if v >= lo && v <= hi {
        return Ok(v);
    }
    Err(check.err(
        &value.span(),
        format!("{ctx}: `{key}` must be from {lo:?} to {hi:?}, got {v:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Balance};

    fn pool(keys: &str) -> String {
        format!(
            "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\n\
             [[pool]]\nname = \"p\"\n{keys}\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n"
        )
    }

    #[test]
    fn defaults_count_streams_and_weigh_the_queue_four_times() {
        let c = parse(&pool(""), "t.toml").expect("valid");
        assert_eq!(c.pools[0].count, Count::Streams);
        assert_eq!(c.pools[0].least_load, LeastLoad::default());
        assert_eq!(c.pools[0].least_load.queue_weight, 4.0);
    }

    #[test]
    fn generating_takes_idle_after_and_idle_weight() {
        let c = parse(
            &pool("balance = \"least_load\"\ncount = \"generating\"\nidle_after = \"500ms\"\nidle_weight = 0.25\n[pool.least_load]\nqueue_weight = 2.5\nkv_full = 0.9\nwaiting_full = 8\n"),
            "t.toml",
        )
        .expect("valid");
        let p = &c.pools[0];
        assert_eq!(p.balance, Balance::LeastLoad);
        assert_eq!(
            p.count,
            Count::Generating {
                idle_after: Duration::from_millis(500),
                idle_weight: 0.25
            }
        );
        assert_eq!(
            p.least_load,
            LeastLoad {
                queue_weight: 2.5,
                kv_weight: 1.0,
                kv_full: 0.9,
                waiting_full: 8
            }
        );
    }

    #[test]
    fn bad_values_name_the_key_and_its_line() {
        for (keys, line, needle) in [
            (
                "count = \"tokens\"",
                8,
                "unknown `count` \"tokens\"; allowed: \"streams\", \"generating\"",
            ),
            (
                "idle_weight = 1.5",
                8,
                "`idle_weight` must be from 0.0 to 1.0, got 1.5",
            ),
            ("idle_after = \"2h\"", 8, "`idle_after` must be at most 1h"),
            (
                "idle_after = \"0s\"",
                8,
                "`idle_after` must be greater than 0",
            ),
            (
                "[pool.least_load]\nkv_full = 0.0",
                9,
                "`kv_full` must be greater than 0.0",
            ),
            (
                "[pool.least_load]\nqueue_weight = -1.0",
                9,
                "`queue_weight` must be from 0.0",
            ),
            (
                "[pool.least_load]\nwaiting_full = 70000",
                9,
                "`waiting_full` must be at most 65535",
            ),
            ("[pool.least_load]\nkv = 1.0", 9, "unknown key `kv`"),
        ] {
            let err = parse(&pool(keys), "t.toml").expect_err(keys).to_string();
            assert!(err.contains(needle), "{keys}: {err}");
            assert!(err.contains(&format!("t.toml:{line}:")), "{keys}: {err}");
        }
    }
}
