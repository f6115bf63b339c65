//! Validation of one `[[pool]]` and its `[[pool.backend]]` entries.
//!
//! A pool that passes has a name, a known balance strategy, sane timeouts, checked tuning keys
//! (see `tuning`), checked health keys (see `health`), checked engine-metrics keys (see `engine_metrics`) and at least one backend with a distinct, connectable address, a weight and a
//! tier in range. It must never let through a backend the engine could not connect to (port 0)
//! or a weight that would starve or overflow.

use super::checks::Checker;
use super::engine_metrics::validate_engine_metrics;
use super::error::ConfigError;
use super::failover::validate_failover;
use super::health::{validate_health, validate_passive};
use super::limits::*;
use super::raw::{RawBackend, RawPool};
use super::tuning::validate_tuning;
use super::{Backend, Balance, Pool};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use toml::Spanned;

/// Checks the `index`-th (0-based) pool; returns it with the span of its name, which the
/// caller needs to report a duplicate.
pub(super) fn validate_pool(
    check: &Checker,
    index: usize,
    raw: &Spanned<RawPool>,
) -> Result<(Pool, Range<usize>), ConfigError> {
    let table = raw.span();
    let p: &RawPool = raw.get_ref();
    let name = check.name(&p.name, &table, &format!("pool {}", index + 1))?;
    let ctx = format!("pool {:?}", name.get_ref());

    let balance = match &p.balance {
        None => Balance::LeastConnections,
        Some(value) => Balance::from_name(value.get_ref()).ok_or_else(|| {
            let allowed: Vec<String> = Balance::ALL
                .iter()
                .map(|b| format!("{:?}", b.as_str()))
                .collect();
            check.err(
                &value.span(),
                format!(
                    "{ctx}: unknown `balance` {:?}; allowed: {}",
                    value.get_ref(),
                    allowed.join(", ")
                ),
            )
        })?,
    };
    let connect_timeout = check.timeout(
        &p.connect_timeout,
        &ctx,
        "connect_timeout",
        DEFAULT_CONNECT_TIMEOUT,
    )?;
    let idle_timeout =
        check.timeout(&p.idle_timeout, &ctx, "idle_timeout", DEFAULT_IDLE_TIMEOUT)?;
    let half_close_timeout = check.timeout(
        &p.half_close_timeout,
        &ctx,
        "half_close_timeout",
        DEFAULT_HALF_CLOSE_TIMEOUT,
    )?;
    let retries = check.int(
        &p.retries,
        &ctx,
        "retries",
        (0, i64::from(u32::MAX)),
        i64::from(DEFAULT_RETRIES),
    )? as u32;
    let tuning = validate_tuning(check, &ctx, p)?;
    let passive = validate_passive(check, &ctx, p)?;
    let failover = validate_failover(check, &ctx, p)?;
    let health = validate_health(check, &ctx, p.health.as_ref())?;
    let engine_metrics = validate_engine_metrics(check, &ctx, p.engine_metrics.as_ref())?;
    let send_proxy = super::routes::send_proxy(check, &ctx, &p.send_proxy)?;

    if p.backend.is_empty() {
        return Err(check.err(
            &name.span(),
            format!("{ctx}: has no backends; add at least one [[pool.backend]] with an `addr`"),
        ));
    }
    let mut backends: Vec<Backend> = Vec::with_capacity(p.backend.len());
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, raw_backend) in p.backend.iter().enumerate() {
        let ctx = format!("{ctx} backend {}", i + 1);
        let (backend, addr_span) = validate_backend(check, &ctx, raw_backend)?;
        if let Some(first) = seen.get(&backend.addr) {
            return Err(check.err(
                &addr_span,
                format!(
                    "{ctx}: duplicate `addr` {} (same as backend {first})",
                    backend.addr
                ),
            ));
        }
        seen.insert(backend.addr, i + 1);
        backends.push(backend);
    }

    let pool = Pool {
        name: name.get_ref().clone(),
        balance,
        connect_timeout,
        idle_timeout,
        half_close_timeout,
        retries,
        backends,
        hash_key: tuning.hash_key,
        session_key: tuning.session_key,
        send_proxy,
        hash_balance_factor: tuning.hash_balance_factor,
        latency_decay: tuning.latency_decay,
        slow_start: tuning.slow_start,
        queue_size: tuning.queue_size,
        queue_timeout: tuning.queue_timeout,
        queue_when_all_down: tuning.queue_when_all_down,
        drain_timeout: tuning.drain_timeout,
        max_connection_age: tuning.max_connection_age,
        max_connection_age_jitter: tuning.max_connection_age_jitter,
        passive,
        health,
        engine_metrics,
        failover,
    };
    Ok((pool, name.span()))
}

/// Checks one backend; returns it with the span of its address for duplicate reports.
fn validate_backend(
    check: &Checker,
    ctx: &str,
    raw: &Spanned<RawBackend>,
) -> Result<(Backend, Range<usize>), ConfigError> {
    let b: &RawBackend = raw.get_ref();
    let addr_value = check.required(&b.addr, &raw.span(), ctx, "addr")?;
    let addr = check.socket_addr(addr_value, ctx, "addr", "127.0.0.1:9001")?;
    if addr.port() == 0 {
        return Err(check.err(
            &addr_value.span(),
            format!("{ctx}: `addr` {addr} has port 0, which nothing can connect to"),
        ));
    }
    let weight = check.int(
        &b.weight,
        ctx,
        "weight",
        (1, i64::from(MAX_WEIGHT)),
        i64::from(DEFAULT_WEIGHT),
    )? as u32;
    let max_connections = check.int(
        &b.max_connections,
        ctx,
        "max_connections",
        (0, i64::from(u32::MAX)),
        i64::from(DEFAULT_MAX_CONNECTIONS),
    )? as u32;
    let tier = check.int(
        &b.tier,
        ctx,
        "tier",
        (0, i64::from(MAX_TIER)),
        i64::from(DEFAULT_TIER),
    )? as u32;
    let backend = Backend {
        addr,
        weight,
        max_connections,
        tier,
    };
    Ok((backend, addr_value.span()))
}
