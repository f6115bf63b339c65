//! Turns the raw file shape into a typed, checked `Config`: applies defaults, checks every
//! range, resolves listener -> pool names to indices, and rejects duplicates and conflicts.
//!
//! It reports the first problem it meets (runtime, then pools, then listeners, each in file
//! order), located at the offending value. It must never accept a config the engine could trip
//! over at run time: whatever passes here is safe to bind, size rings with, and balance across.

use super::admin::validate_admin;
use super::checks::Checker;
use super::error::{ConfigError, Locator};
use super::handover::validate_handover_socket;
use super::io::validate_io;
use super::limits::*;
use super::pools::validate_pool;
use super::raw::{RawConfig, RawListener, RawRuntime};
use super::routes::validate_routes;
use super::size::format_size;
use super::{Config, Listener, Pool, Runtime};
use crate::route::Routes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Checks `raw` (parsed from the text `loc` refers to) and builds the typed config.
pub(super) fn validate(raw: &RawConfig, loc: &Locator) -> Result<Config, ConfigError> {
    let check = Checker { loc };
    let runtime = validate_runtime(&check, raw.runtime.as_ref())?;

    let mut pools: Vec<Pool> = Vec::with_capacity(raw.pool.len());
    let mut pool_index: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    for (i, raw_pool) in raw.pool.iter().enumerate() {
        let (pool, name_span) = validate_pool(&check, i, raw_pool)?;
        if let Some((_, first)) = pool_index.get(&pool.name) {
            return Err(check.err(
                &name_span,
                format!(
                    "pool {:?}: duplicate pool `name` (first defined at line {})",
                    pool.name,
                    loc.line_of(first)
                ),
            ));
        }
        pool_index.insert(pool.name.clone(), (i, name_span));
        pools.push(pool);
    }

    let mut listeners: Vec<Listener> = Vec::with_capacity(raw.listener.len());
    let mut routes = Vec::with_capacity(raw.listener.len());
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut binds: Vec<(SocketAddr, String, Range<usize>)> = Vec::new();
    for (i, raw_listener) in raw.listener.iter().enumerate() {
        let table = raw_listener.span();
        let l: &RawListener = raw_listener.get_ref();
        let name = check.name(&l.name, &table, &format!("listener {}", i + 1))?;
        let ctx = format!("listener {:?}", name.get_ref());
        if let Some(first) = names.get(name.get_ref()) {
            return Err(check.err(
                &name.span(),
                format!(
                    "{ctx}: duplicate listener `name` (first defined at line {})",
                    loc.line_of(first)
                ),
            ));
        }
        names.insert(name.get_ref().clone(), name.span());

        let bind_value = check.required(&l.bind, &table, &ctx, "bind")?;
        let bind = check.socket_addr(bind_value, &ctx, "bind", "127.0.0.1:8080")?;
        if let Some((other, other_name, other_span)) = binds
            .iter()
            .find(|(other, ..)| binds_conflict(*other, bind))
        {
            return Err(check.err(
                &bind_value.span(),
                format!(
                    "{ctx}: `bind` {bind} overlaps {other} of listener {other_name:?} \
                     (line {}); two sockets cannot listen on the same address and port",
                    loc.line_of(other_span)
                ),
            ));
        }
        binds.push((bind, name.get_ref().clone(), bind_value.span()));

        let pool_value = check.required(&l.pool, &table, &ctx, "pool")?;
        let pool = super::routes::pool_named(&check, &ctx, pool_value, &pool_index, &pools)?;

        let backlog = check.int(
            &l.backlog,
            &ctx,
            "backlog",
            (1, i64::from(MAX_BACKLOG)),
            i64::from(DEFAULT_BACKLOG),
        )?;
        let max_connections = check.int(
            &l.max_connections,
            &ctx,
            "max_connections",
            (0, i64::from(MAX_CONNECTIONS_LIMIT)),
            0,
        )?;
        let listener_routes = validate_routes(&check, &ctx, l, pool, &pool_index, &pools)?;
        check_peek_memory(
            &check,
            raw.runtime.as_ref(),
            &runtime,
            &ctx,
            &listener_routes,
        )?;
        routes.push(Arc::new(listener_routes));
        listeners.push(Listener {
            name: name.get_ref().clone(),
            bind,
            pool,
            // In range by the checks above.
            backlog: backlog as u32,
            max_connections: max_connections as u32,
        });
    }

    if listeners.is_empty() {
        return Err(check.err(
            &(0..0),
            "no [[listener]] is defined; ringlb needs at least one to accept connections"
                .to_string(),
        ));
    }
    let listener_binds: Vec<(SocketAddr, String)> =
        listeners.iter().map(|l| (l.bind, l.name.clone())).collect();
    let admin = validate_admin(&check, raw.admin.as_ref(), &listener_binds, binds_conflict)?;
    Ok(Config {
        runtime,
        listeners,
        pools,
        admin,
        routes,
        digest: String::new(),
    })
}

/// `peek_memory_max` must let at least one connection of listener `ctx` peek in full, or its
/// connections would wait for a turn that never comes.
fn check_peek_memory(
    check: &Checker,
    raw: Option<&RawRuntime>,
    runtime: &Runtime,
    ctx: &str,
    routes: &Routes,
) -> Result<(), ConfigError> {
    let need = routes.peek_bytes_max() as u64;
    match raw.and_then(|r| r.peek_memory_max.as_ref()) {
        Some(value) if routes.needs_peek() && runtime.peek_memory_max < need => Err(check.err(
            &value.span(),
            format!(
                "runtime: `peek_memory_max` ({}) is less than one peek of {ctx} needs \
                 (peek_max + peek_body_max = {}); no connection of it could be routed",
                format_size(runtime.peek_memory_max),
                format_size(need)
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether two listen addresses would collide: same nonzero port, and the same IP or a
/// wildcard of the same family. Port 0 asks the kernel for a fresh port, so it never collides.
fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}

fn validate_runtime(check: &Checker, raw: Option<&RawRuntime>) -> Result<Runtime, ConfigError> {
    let empty = RawRuntime {
        workers: None,
        pin_workers: None,
        ring_entries: None,
        buffer_size: None,
        buffer_count: None,
        max_unsent: None,
        max_connections: None,
        access_log: None,
        access_log_interval: None,
        shutdown_timeout: None,
        handover_socket: None,
        peek_memory_max: None,
        io: None,
        dns_servers: None,
    };
    let r = raw.unwrap_or(&empty);
    let ctx = "runtime";
    let workers = check.int(&r.workers, ctx, "workers", (0, MAX_WORKERS as i64), 0)? as usize;
    let workers = if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    };
    let ring_entries = check.pow2(
        &r.ring_entries,
        ctx,
        "ring_entries",
        (MIN_RING_ENTRIES, MAX_RING_ENTRIES),
        DEFAULT_RING_ENTRIES,
    )?;
    let buffer_size = check.int(
        &r.buffer_size,
        ctx,
        "buffer_size",
        (i64::from(MIN_BUFFER_SIZE), i64::from(MAX_BUFFER_SIZE)),
        i64::from(DEFAULT_BUFFER_SIZE),
    )? as u32;
    let buffer_count = check.pow2(
        &r.buffer_count,
        ctx,
        "buffer_count",
        (MIN_BUFFER_COUNT, MAX_BUFFER_COUNT),
        DEFAULT_BUFFER_COUNT,
    )?;
    let max_unsent = max_unsent(check, r, buffer_size)?;
    let max_connections = check.int(
        &r.max_connections,
        ctx,
        "max_connections",
        (0, i64::from(MAX_CONNECTIONS_LIMIT)),
        0,
    )? as u32;
    let access_log_interval = check.duration_or_zero(
        &r.access_log_interval,
        ctx,
        "access_log_interval",
        Duration::ZERO,
    )?;
    let shutdown_timeout = check.duration_or_zero(
        &r.shutdown_timeout,
        ctx,
        "shutdown_timeout",
        DEFAULT_SHUTDOWN_TIMEOUT,
    )?;
    let handover_socket = validate_handover_socket(check, &r.handover_socket)?;
    let peek_memory_max = check.size(
        &r.peek_memory_max,
        ctx,
        "peek_memory_max",
        (MIN_PEEK_MAX, MAX_PEEK_MEMORY_MAX),
        DEFAULT_PEEK_MEMORY_MAX,
    )?;
    let io = validate_io(check, &r.io)?;
    let dns_servers = super::dns::dns_servers(check, &r.dns_servers)?;
    Ok(Runtime {
        dns_servers,
        io,
        handover_socket,
        peek_memory_max,
        max_connections,
        access_log: r.access_log.unwrap_or(true),
        access_log_interval,
        shutdown_timeout,
        workers,
        pin_workers: r.pin_workers.unwrap_or(false),
        ring_entries,
        buffer_size,
        buffer_count,
        max_unsent,
    })
}

/// `max_unsent` must hold at least one full buffer, or a single receive would already be over
/// the limit and reading would stop for good. When it is the default that is too small, the
/// error points at the `buffer_size` that made it so.
fn max_unsent(check: &Checker, r: &RawRuntime, buffer_size: u32) -> Result<u32, ConfigError> {
    match (&r.max_unsent, &r.buffer_size) {
        (Some(value), _) => {
            let v = *value.get_ref();
            if v < i64::from(buffer_size) {
                return Err(check.err(
                    &value.span(),
                    format!(
                        "runtime: `max_unsent` must be at least `buffer_size` ({buffer_size}), \
                         got {}",
                        check.shown(value)
                    ),
                ));
            }
            u32::try_from(v).map_err(|_| {
                check.err(
                    &value.span(),
                    format!(
                        "runtime: `max_unsent` must be at most {}, got {}",
                        u32::MAX,
                        check.shown(value)
                    ),
                )
            })
        }
        (None, Some(size)) if buffer_size > DEFAULT_MAX_UNSENT => Err(check.err(
            &size.span(),
            format!(
                "runtime: `buffer_size` {buffer_size} is larger than the default `max_unsent` \
                 {DEFAULT_MAX_UNSENT}; set `max_unsent` to at least {buffer_size}"
            ),
        )),
        (None, _) => Ok(DEFAULT_MAX_UNSENT),
    }
}
