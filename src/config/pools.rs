//! Validation of one `[[pool]]` and its `[[pool.backend]]` entries.
//!
//! A pool that passes has a name, a known balance strategy, sane timeouts, checked tuning keys
//! (see `tuning`), checked health keys (see `health`), checked engine-metrics keys (see
//! `engine_metrics`) and at least one backend with a distinct, connectable address, a weight
//! and a tier in range. A backend's `addr` may be a DNS name (kept as a name, with its
//! `dns_refresh`). It must never let through a backend the engine could not connect to (port
//! 0) or a weight that would starve or overflow.

use super::addr::{parse_backend_addr, BackendAddr};
use super::checks::Checker;
use super::engine_metrics::validate_engine_metrics;
use super::error::ConfigError;
use super::failover::validate_failover;
use super::health::{validate_health, validate_passive};
use super::limits::*;
use super::raw::{RawBackend, RawPool};
use super::tuning::validate_tuning;
use super::{Backend, Balance, NamedBackend, Pool};
use std::collections::HashMap;
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
    let count = super::load_aware::validate_count(check, &ctx, p)?;
    let least_load = super::load_aware::validate_least_load(check, &ctx, p.least_load.as_ref())?;
    let dns_refresh =
        super::dns::dns_refresh(check, &p.dns_refresh, &ctx, super::dns::DEFAULT_DNS_REFRESH)?;

    if p.backend.is_empty() {
        return Err(check.err(
            &name.span(),
            format!("{ctx}: has no backends; add at least one [[pool.backend]] with an `addr`"),
        ));
    }
    let mut backends: Vec<Backend> = Vec::with_capacity(p.backend.len());
    let mut names: Vec<NamedBackend> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw_backend) in p.backend.iter().enumerate() {
        let ctx = format!("{ctx} backend {}", i + 1);
        let (entry, addr_span) = validate_backend(check, &ctx, raw_backend, dns_refresh)?;
        let key = match &entry {
            Entry::Literal(b) => b.addr.to_string(),
            Entry::Name(n) => n.label(),
        };
        if let Some(first) = seen.get(&key) {
            return Err(check.err(
                &addr_span,
                format!("{ctx}: duplicate `addr` {key} (same as backend {first})"),
            ));
        }
        seen.insert(key, i + 1);
        match entry {
            Entry::Literal(b) => backends.push(b),
            Entry::Name(n) => names.push(n),
        }
    }

    let pool = Pool {
        name: name.get_ref().clone(),
        balance,
        connect_timeout,
        idle_timeout,
        half_close_timeout,
        retries,
        backends,
        names,
        hash_key: tuning.hash_key,
        session_key: tuning.session_key,
        send_proxy,
        count,
        least_load,
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

/// A backend entry: a literal address, or a name.
enum Entry {
    Literal(Backend),
    Name(NamedBackend),
}

/// Checks one backend; returns it with the span of its address for duplicate reports.
/// `pool_refresh` is the pool's `dns_refresh`, which the entry's own overrides.
fn validate_backend(
    check: &Checker,
    ctx: &str,
    raw: &Spanned<RawBackend>,
    pool_refresh: std::time::Duration,
) -> Result<(Entry, Range<usize>), ConfigError> {
    let b: &RawBackend = raw.get_ref();
    let addr_value = check.required(&b.addr, &raw.span(), ctx, "addr")?;
    let addr = parse_backend_addr(addr_value.get_ref()).map_err(|why| {
        check.err(
            &addr_value.span(),
            format!(
                "{ctx}: `addr` expected IP:port or name:port such as \"10.0.0.5:8000\" or \
                 \"vllm.gpu.svc.cluster.local:8000\", got {:?}: {why}",
                addr_value.get_ref()
            ),
        )
    })?;
    let port = match &addr {
        BackendAddr::Literal(a) => a.port(),
        BackendAddr::Name { port, .. } => *port,
    };
    if port == 0 {
        return Err(check.err(
            &addr_value.span(),
            format!(
                "{ctx}: `addr` {} has port 0, which nothing can connect to",
                addr_value.get_ref()
            ),
        ));
    }
    let refresh = super::dns::dns_refresh(check, &b.dns_refresh, ctx, pool_refresh)?;
    if let (BackendAddr::Literal(a), Some(value)) = (&addr, &b.dns_refresh) {
        return Err(check.err(
            &value.span(),
            format!("{ctx}: `dns_refresh` applies to a DNS name, but `addr` {a} is an IP address"),
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
    let entry = match addr {
        BackendAddr::Literal(addr) => Entry::Literal(Backend {
            addr,
            weight,
            max_connections,
            tier,
        }),
        BackendAddr::Name { host, port } => Entry::Name(NamedBackend {
            host,
            port,
            weight,
            max_connections,
            tier,
            refresh,
        }),
    };
    Ok((entry, addr_value.span()))
}
