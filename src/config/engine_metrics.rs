//! A pool's `[pool.engine_metrics]`: scrape each backend's inference-engine metrics (vLLM,
//! SGLang, TGI or named series) for its own view of its load, and tell a stalled engine.
//!
//! This must never let through a timeout longer than the interval (scrapes would overlap), a
//! `stale_after` that does not exceed the interval (every reading would lapse before the next
//! scrape), a custom flavor without its `running` series, series names only a custom flavor
//! reads given with another flavor (they would be silently ignored), or a series name that is
//! not a Prometheus metric name. `stall_after` must exceed the interval too (or be "off"/0):
//! one scrape without a new token is not a stall.

use std::time::Duration;

use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;
use super::format_duration;
use super::health::{one_of, request_path, MIN_CHECK_INTERVAL};
use super::raw::{RawDuration, RawEngineMetrics};
use crate::balance::{EngineFlavor, EngineNames, EngineScrape};

/// What vLLM, SGLang and TGI all serve, on their API port.
pub const DEFAULT_ENGINE_PATH: &str = "/metrics";
/// Twice a second: engines update their gauges every step, and a reading older than a second
/// misses the bursts a balancer should see; one scrape is a few KiB.
pub const DEFAULT_ENGINE_INTERVAL: Duration = Duration::from_millis(500);
/// One second (or the interval, if shorter): a `/metrics` answer takes milliseconds; an
/// engine that needs a second to answer it is overloaded, and its reading would be old.
pub const DEFAULT_ENGINE_TIMEOUT: Duration = Duration::from_secs(1);
/// Three seconds: six missed scrapes at the default interval before picks stop trusting the
/// last reading and fall back to ringlb's own counts.
pub const DEFAULT_ENGINE_STALE_AFTER: Duration = Duration::from_secs(3);
/// Thirty seconds: long prefills of huge prompts keep the generation counter still for
/// seconds; half a minute with requests running and not one token is a hung engine.
pub const DEFAULT_ENGINE_STALL_AFTER: Duration = Duration::from_secs(30);

/// The `[pool.engine_metrics]` table of a pool, if it has one.
pub(super) fn validate_engine_metrics(
    check: &Checker,
    pool_ctx: &str,
    raw: Option<&Spanned<RawEngineMetrics>>,
) -> Result<Option<EngineScrape>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let ctx = format!("{pool_ctx} engine_metrics");
    let ctx = ctx.as_str();
    let m: &RawEngineMetrics = raw.get_ref();
    let path = request_path(check, ctx, &m.path, DEFAULT_ENGINE_PATH)?;
    let port = match &m.port {
        None => None,
        Some(_) => Some(check.int(&m.port, ctx, "port", (1, 65_535), 0)? as u16),
    };
    let interval = check.timeout(&m.interval, ctx, "interval", DEFAULT_ENGINE_INTERVAL)?;
    if let Some(value) = &m.interval {
        if interval < MIN_CHECK_INTERVAL {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `interval` must be at least {}, got {:?}",
                    format_duration(MIN_CHECK_INTERVAL),
                    value.get_ref().0
                ),
            ));
        }
    }
    let timeout = check.timeout(
        &m.timeout,
        ctx,
        "timeout",
        DEFAULT_ENGINE_TIMEOUT.min(interval),
    )?;
    if let Some(value) = &m.timeout {
        if timeout > interval {
            return Err(bound(check, ctx, value, "timeout", "at most", interval));
        }
    }
    let stale_after = check.timeout(
        &m.stale_after,
        ctx,
        "stale_after",
        DEFAULT_ENGINE_STALE_AFTER.max(interval * 2),
    )?;
    if let Some(value) = &m.stale_after {
        if stale_after <= interval {
            return Err(bound(
                check,
                ctx,
                value,
                "stale_after",
                "more than",
                interval,
            ));
        }
    }
    let stall_after = match &m.stall_after {
        None => Some(DEFAULT_ENGINE_STALL_AFTER),
        Some(value) if value.get_ref().0 == "off" => None,
        Some(value) => {
            let d = check.duration(value, ctx, "stall_after", true)?;
            if !d.is_zero() && d <= interval {
                return Err(bound(
                    check,
                    ctx,
                    value,
                    "stall_after",
                    "more than",
                    interval,
                ));
            }
            Some(d)
        }
    }
    .filter(|d| !d.is_zero());
    Ok(Some(EngineScrape {
        path,
        port,
        interval,
        timeout,
        flavor: flavor(check, ctx, m)?,
        stale_after,
        stall_after,
    }))
}

/// "`{key}` must be {relation} `interval` (...)".
fn bound(
    check: &Checker,
    ctx: &str,
    value: &Spanned<RawDuration>,
    key: &str,
    relation: &str,
    interval: Duration,
) -> ConfigError {
    check.err(
        &value.span(),
        format!(
            "{ctx}: `{key}` must be {relation} `interval` ({}), got {:?}",
            format_duration(interval),
            value.get_ref().0
        ),
    )
}

#[derive(Clone, Copy)]
enum Kind {
    Auto,
    Vllm,
    Sglang,
    Tgi,
    Custom,
}

/// `flavor` and, for `custom`, the series names.
fn flavor(check: &Checker, ctx: &str, m: &RawEngineMetrics) -> Result<EngineFlavor, ConfigError> {
    let kinds = [
        ("auto", Kind::Auto),
        ("vllm", Kind::Vllm),
        ("sglang", Kind::Sglang),
        ("tgi", Kind::Tgi),
        ("custom", Kind::Custom),
    ];
    let kind = one_of(check, &m.flavor, ctx, "flavor", &kinds, Kind::Auto)?;
    let names = [
        ("running", &m.running),
        ("waiting", &m.waiting),
        ("kv_usage", &m.kv_usage),
        ("generation", &m.generation),
    ];
    let flavor = match kind {
        Kind::Auto => EngineFlavor::Auto,
        Kind::Vllm => EngineFlavor::Vllm,
        Kind::Sglang => EngineFlavor::Sglang,
        Kind::Tgi => EngineFlavor::Tgi,
        Kind::Custom => {
            let name = |v: &Option<Spanned<String>>, key| series(check, ctx, key, v);
            let running = check.required(&m.running, &m.flavor_span(), ctx, "running")?;
            return Ok(EngineFlavor::Custom(EngineNames {
                running: name(&Some(running.clone()), "running")?.unwrap_or_default(),
                waiting: name(&m.waiting, "waiting")?,
                kv_usage: name(&m.kv_usage, "kv_usage")?,
                generation: name(&m.generation, "generation")?,
            }));
        }
    };
    if let Some((key, Some(value))) = names.iter().find(|(_, v)| v.is_some()) {
        return Err(check.err(
            &value.span(),
            format!(
                "{ctx}: `{key}` names a series only with `flavor = \"custom\"`; flavor {:?} \
                 reads its own",
                flavor.as_str()
            ),
        ));
    }
    Ok(flavor)
}

/// A series name: a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
fn series(
    check: &Checker,
    ctx: &str,
    key: &str,
    value: &Option<Spanned<String>>,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.get_ref();
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(check.err(
            &value.span(),
            format!(
                "{ctx}: `{key}` must be a Prometheus metric name (letters, digits, '_' and ':', \
                 not starting with a digit), got {text:?}"
            ),
        ));
    }
    Ok(Some(text.clone()))
}

impl RawEngineMetrics {
    /// Where a missing custom series is reported: at `flavor = "custom"`.
    fn flavor_span(&self) -> std::ops::Range<usize> {
        self.flavor.as_ref().map_or(0..0, |f| f.span())
    }
}

/// One line for `ringlb check`.
pub(super) fn describe(m: &EngineScrape) -> String {
    let target = match m.port {
        Some(port) => format!("port {port} "),
        None => String::new(),
    };
    let flavor = match &m.flavor {
        EngineFlavor::Custom(n) => {
            let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
            format!(
                "custom (running {}, waiting {}, kv_usage {}, generation {})",
                n.running,
                opt(&n.waiting),
                opt(&n.kv_usage),
                opt(&n.generation)
            )
        }
        f => f.as_str().to_string(),
    };
    format!(
        "engine metrics GET {target}{} every {} (timeout {}), flavor {flavor}, stale_after {}, \
         stall_after {}",
        m.path,
        format_duration(m.interval),
        format_duration(m.timeout),
        format_duration(m.stale_after),
        m.stall_after.map_or("off".into(), format_duration)
    )
}
