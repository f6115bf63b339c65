//! `GET /status`: the same [`Sample`] as `/metrics`, as JSON for scripts and the status page.
//!
//! Shape: `{version, config_digest, uptime_s, admitted, max_connections, reloads,
//! reload_failures, io: {driver, reason}, listeners: [{name, addr, pool}], pools: [{name, balance, queue_size,
//! queue_length, queue_dispatched, backends: [{addr, name, ...}]}], workers: [{id, ...counters}],
//! totals}`; a backend has `engine: {fresh, running, waiting, kv_usage, stalled, scrapes_ok,
//! scrapes_error}` when its pool scrapes engine metrics, else `engine: null`.
//! Fields may be added; none is renamed or removed (scripts and the page rely on them).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::balance::DEFAULT_FAIL_THRESHOLD;

use super::metrics::WORKER;
use super::overrides::Override;
use super::sample::{BackendSample, Sample};

#[derive(Serialize)]
struct Status<'a> {
    version: &'static str,
    config_digest: &'a str,
    uptime_s: f64,
    admitted: u32,
    max_connections: u32,
    reloads: u64,
    reload_failures: u64,
    io: Io<'a>,
    listeners: Vec<Listener<'a>>,
    pools: Vec<Pool<'a>>,
    workers: Vec<Value>,
    totals: Value,
}

/// The I/O driver: "io_uring" or "epoll", and why (config, override, or the probe's finding).
#[derive(Serialize)]
struct Io<'a> {
    driver: &'static str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Listener<'a> {
    name: &'a str,
    addr: &'a str,
    pool: &'a str,
}

#[derive(Serialize)]
struct Pool<'a> {
    name: &'a str,
    balance: &'static str,
    queue_size: u32,
    queue_length: u32,
    /// Clients dispatched from the queue so far.
    queue_dispatched: u64,
    backends: Vec<Backend>,
}

#[derive(Serialize)]
struct Backend {
    addr: String,
    /// The DNS name (`host:port`) this address came from; null for a literal `addr`.
    name: Option<String>,
    /// "up", "down", "unknown" or "draining".
    state: &'static str,
    active: u32,
    /// Of `active`, the streams counted idle (`count = "generating"`); 0 otherwise.
    idle: u32,
    /// Streams of the draining process this one took over from (hand-over); 0 without one.
    handover_active: u32,
    weight: u32,
    effective_weight: u32,
    max_connections: u32,
    tier: u32,
    latency_ms: Option<f64>,
    /// Bytes relayed to the backend (requests in) and from it (answers out).
    bytes_in: u64,
    bytes_out: u64,
    /// Connects that failed, all kinds.
    connect_failures: u64,
    /// Streams that ended, by close reason (only reasons seen so far).
    streams: Map<String, Value>,
    health: Health,
    /// The engine's own load (`[pool.engine_metrics]`); null for a backend not scraped.
    engine: Option<Engine>,
    /// The operator override in force (null: none).
    #[serde(rename = "override")]
    set: Option<Override>,
}

#[derive(Serialize)]
struct Health {
    /// Health and drain in one word, with the reason when down, e.g. "down (check: status
    /// 503)".
    state: String,
    /// Passive health: "down" after connect failures until its backoff ends, then
    /// "half_open" (picked again for trial connects) until a connect succeeds; else "up".
    passive: &'static str,
    consecutive_failures: u32,
}

/// What the engine-metrics scraper last published for a backend.
#[derive(Serialize)]
struct Engine {
    /// The last reading holds (scraped within `stale_after`); the three values below are
    /// null when it does not.
    fresh: bool,
    running: Option<u32>,
    waiting: Option<u32>,
    /// 0 to 1; null also when the engine does not publish it.
    kv_usage: Option<f64>,
    /// Requests running and the generation counter still for `stall_after`: no new streams.
    stalled: bool,
    scrapes_ok: u64,
    scrapes_error: u64,
}

fn engine(s: &crate::balance::BackendSnapshot) -> Option<Engine> {
    s.engine_scraped.then(|| Engine {
        fresh: s.engine.is_some(),
        running: s.engine.map(|r| r.running),
        waiting: s.engine.map(|r| r.waiting),
        kv_usage: s.engine.and_then(|r| r.kv_usage),
        stalled: s.engine_stalled,
        scrapes_ok: s.counters.engine_scrapes_ok,
        scrapes_error: s.counters.engine_scrapes_error,
    })
}

fn backend(b: &BackendSample) -> Backend {
    let s = &b.snap;
    Backend {
        addr: s.addr.to_string(),
        name: b.origin.clone(),
        state: b.state(),
        active: s.active,
        idle: s.idle,
        handover_active: s.foreign,
        weight: s.weight,
        effective_weight: s.effective_weight,
        max_connections: s.max_connections,
        tier: s.tier,
        latency_ms: s.latency_ms,
        bytes_in: s.counters.bytes_to_backend,
        bytes_out: s.counters.bytes_from_backend,
        connect_failures: s.counters.connect_failures.iter().map(|(_, n)| n).sum(),
        streams: s
            .counters
            .streams
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.name().to_string(), Value::from(*n)))
            .collect(),
        health: Health {
            state: s.health.to_string(),
            passive: if s.down {
                "down"
            } else if s.consecutive_failures >= DEFAULT_FAIL_THRESHOLD {
                "half_open"
            } else {
                "up"
            },
            consecutive_failures: s.consecutive_failures,
        },
        engine: engine(s),
        set: b.set,
    }
}

fn counters(
    id: Option<usize>,
    get: impl Fn(fn(&crate::engine::StatsSnapshot) -> u64) -> u64,
) -> Value {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), id.into());
    }
    for row in WORKER {
        m.insert(row.key.into(), get(row.get).into());
    }
    Value::Object(m)
}

/// The JSON body.
pub(super) fn render(s: &Sample) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        config_digest: &s.config.digest,
        uptime_s: (now - s.started_unix_s).max(0.0),
        admitted: s.admitted,
        max_connections: s.max_connections,
        reloads: s.reloads,
        reload_failures: s.reload_failures,
        io: Io {
            driver: s.io.driver.as_str(),
            reason: &s.io.reason,
        },
        listeners: s
            .listeners
            .iter()
            .map(|(name, addr, pool)| Listener { name, addr, pool })
            .collect(),
        pools: s
            .pools
            .iter()
            .map(|p| Pool {
                name: &p.name,
                balance: p.balance,
                queue_size: p.queue_size,
                queue_length: p.queue_len,
                queue_dispatched: p.queue_wait.count(),
                backends: p.backends.iter().map(backend).collect(),
            })
            .collect(),
        workers: s
            .workers
            .iter()
            .enumerate()
            .map(|(id, w)| counters(Some(id), |get| get(w)))
            .collect(),
        totals: counters(None, |get| s.workers.iter().map(get).sum()),
    };
    // Serializing plain structs, strings and numbers cannot fail; a failure would be a bug,
    // answered with an empty object rather than a panic on the control thread.
    serde_json::to_string(&status).unwrap_or_else(|_| "{}".into())
}
