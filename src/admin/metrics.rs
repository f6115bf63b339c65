//! `GET /metrics`: every `ringlb_*` family, from one [`Sample`].
//!
//! Families are rows of tables: a per-backend or per-worker metric is one entry of
//! [`BACKEND`] or [`WORKER`] (name, help, type, how to read it), so a new counter (bytes in and
//! out, streams by close reason, connect failures by kind) is one more row; a row may yield
//! several samples under an extra label ([`Read::ByLabel`]). This module must never invent a
//! value: what the engine does not measure is absent, not zero.

use crate::engine::{StatsSnapshot, WAIT_BUCKETS_US};

use super::expo::{le_seconds, Exposition, Kind, CONTENT_TYPE};
use super::sample::{BackendSample, Sample};

/// How a per-backend row reads its value(s).
pub(super) enum Read {
    /// One sample, or none (e.g. no latency sample yet).
    One(fn(&BackendSample) -> Option<f64>),
    /// One sample per value of an extra label, e.g. `state` or (later) `reason`.
    ByLabel(&'static str, fn(&BackendSample) -> Vec<(&'static str, f64)>),
}

pub(super) struct BackendRow {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub read: Read,
}

/// Per backend, labels `pool` and `backend` (its address).
pub(super) const BACKEND: &[BackendRow] = &[
    BackendRow {
        name: "ringlb_backend_active_streams",
        help: "Streams open to the backend now, all workers.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.active))),
    },
    BackendRow {
        name: "ringlb_backend_idle_streams",
        help: "Of the active streams, those counted idle: the backend silent for the pool's idle_after (count = \"generating\"; 0 otherwise).",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.idle))),
    },
    BackendRow {
        name: "ringlb_backend_weight",
        help: "Weight new streams are picked with: configured or set by an operator, 0 while draining.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.weight))),
    },
    BackendRow {
        name: "ringlb_backend_effective_weight",
        help: "Weight after the slow-start ramp.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.effective_weight))),
    },
    BackendRow {
        name: "ringlb_backend_max_connections",
        help: "Streams the backend may hold at once; 0 = unlimited.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.max_connections))),
    },
    BackendRow {
        name: "ringlb_backend_tier",
        help: "Fallback tier of the backend; 0 = primary.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.tier))),
    },
    BackendRow {
        name: "ringlb_backend_up",
        help: "1 while the backend takes new streams by health (not down by its check or passive health, not unknown).",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(if matches!(b.state(), "up" | "draining") { 1.0 } else { 0.0 })),
    },
    BackendRow {
        name: "ringlb_backend_state",
        help: "1 for the backend's state: up, down (check or passive health), unknown (checked, no result yet) or draining (operator).",
        kind: Kind::Gauge,
        read: Read::ByLabel("state", |b| {
            let now = b.state();
            ["up", "down", "unknown", "draining"]
                .into_iter()
                .map(|s| (s, if s == now { 1.0 } else { 0.0 }))
                .collect()
        }),
    },
    BackendRow {
        name: "ringlb_backend_consecutive_connect_failures",
        help: "Connect failures in a row since the last success.",
        kind: Kind::Gauge,
        read: Read::One(|b| Some(f64::from(b.snap.consecutive_failures))),
    },
    BackendRow {
        name: "ringlb_backend_engine_running",
        help: "Requests the backend's inference engine reports running (all its clients), from its last fresh scrape; absent without one.",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.engine.map(|r| f64::from(r.running))),
    },
    BackendRow {
        name: "ringlb_backend_engine_waiting",
        help: "Requests the backend's inference engine reports queued, from its last fresh scrape; absent without one.",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.engine.map(|r| f64::from(r.waiting))),
    },
    BackendRow {
        name: "ringlb_backend_engine_kv_usage",
        help: "KV-cache usage (0 to 1) the backend's inference engine reports, from its last fresh scrape; absent without one or if the engine does not publish it.",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.engine.and_then(|r| r.kv_usage)),
    },
    BackendRow {
        name: "ringlb_backend_engine_fresh",
        help: "1 while the backend's last engine-metrics reading holds (scraped within stale_after); only for backends of pools with [pool.engine_metrics].",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.engine_scraped.then(|| flag(b.snap.engine.is_some()))),
    },
    BackendRow {
        name: "ringlb_backend_engine_stalled",
        help: "1 while the engine reports requests running and its generation counter has not moved for stall_after (the backend takes no new stream); only for scraped backends.",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.engine_scraped.then(|| flag(b.snap.engine_stalled))),
    },
    BackendRow {
        name: "ringlb_backend_engine_scrapes_total",
        help: "Engine-metrics scrapes of the backend, by result: ok (a reading), error (no answer, not 200, or not the engine's series); only for scraped backends.",
        kind: Kind::Counter,
        read: Read::ByLabel("result", |b| {
            if !b.snap.engine_scraped {
                return Vec::new();
            }
            let c = &b.snap.counters;
            vec![
                ("ok", c.engine_scrapes_ok as f64),
                ("error", c.engine_scrapes_error as f64),
            ]
        }),
    },
    BackendRow {
        name: "ringlb_backend_latency_seconds",
        help: "Peak-EWMA estimate of connect time + time to first byte; absent before a sample.",
        kind: Kind::Gauge,
        read: Read::One(|b| b.snap.latency_ms.map(|ms| ms / 1e3)),
    },
];

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// One per-worker counter or gauge; `key` is its name in `/status`.
pub(super) struct WorkerRow {
    pub name: &'static str,
    pub key: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub get: fn(&StatsSnapshot) -> u64,
}

macro_rules! worker_rows {
    ($($kind:ident $name:literal $field:ident $help:literal;)*) => {
        /// Per worker, label `worker` (its id).
        pub(super) const WORKER: &[WorkerRow] = &[$(WorkerRow {
            name: $name,
            key: stringify!($field),
            help: $help,
            kind: Kind::$kind,
            get: |s| s.$field,
        }),*];
    };
}

worker_rows! {
    Gauge "ringlb_worker_connections" connections "Connections in the worker's slab (clients and queued clients).";
    Gauge "ringlb_worker_buffers_in_use" buffers_in_use "Receive buffers held (received, not yet sent or copied).";
    Gauge "ringlb_worker_buffers_warm" buffers_warm "Receive buffers that may be resident.";
    Gauge "ringlb_worker_spill_blocks" spill_blocks "Spill blocks holding bytes for slow or stalled peers.";
    Gauge "ringlb_worker_peek_bytes" peek_bytes "Bytes held by clients being peeked at for content routing (bounded by peek_memory_max).";
    Counter "ringlb_worker_accepted_total" accepted "Client connections accepted.";
    Counter "ringlb_worker_streams_completed_total" completed "Streams that ended with both directions closed cleanly.";
    Counter "ringlb_worker_resets_total" resets "Streams ended by a reset.";
    Counter "ringlb_worker_connect_failures_total" connect_failures "Backend connects that failed.";
    Counter "ringlb_worker_connect_retries_total" retries "Connects retried on another backend.";
    Counter "ringlb_worker_replays_total" replays "Streams whose backend failed before its first byte, replayed to another backend.";
    Counter "ringlb_worker_first_byte_timeouts_total" first_byte_timeouts "Streams whose backend sent nothing within first_byte_timeout.";
    Counter "ringlb_worker_peek_timeouts_total" peek_timeouts "Clients closed because they sent too little to route within peek_timeout.";
    Counter "ringlb_worker_peek_rejects_total" peek_rejects "Clients closed by the peek: peek_max passed undecided, a bad PROXY header, or a close before any byte.";
    Counter "ringlb_worker_peek_body_capped_total" peek_body_capped "Request bodies scanned to peek_body_max without the JSON members sought (default pool).";
    Counter "ringlb_worker_peek_waits_total" peek_waits "Clients that waited for peek memory (peek_memory_max) before being read.";
    Counter "ringlb_worker_socket_waits_total" socket_waits "Backend sockets not opened for lack of descriptors; the client waited and was dispatched again.";
    Counter "ringlb_worker_no_backend_total" no_backend "Clients closed because no backend could take them.";
    Counter "ringlb_worker_idle_timeouts_total" idle_timeouts "Streams closed after idle_timeout.";
    Counter "ringlb_worker_half_close_timeouts_total" half_close_timeouts "Half-closed streams closed after half_close_timeout.";
    Counter "ringlb_worker_max_age_closes_total" age_closes "Streams closed for reaching max_connection_age.";
    Counter "ringlb_worker_queued_total" queued "Clients that waited in a pool queue.";
    Counter "ringlb_worker_queue_full_total" queue_full "Clients closed because every backend and the queue were full.";
    Counter "ringlb_worker_queue_timeouts_total" queue_timeouts "Queued clients closed after queue_timeout.";
    Counter "ringlb_worker_queue_abandoned_total" queue_abandoned "Queued clients that hung up before a backend had room.";
    Counter "ringlb_worker_truncated_total" truncated "Streams cut with bytes still queued for a side.";
    Counter "ringlb_worker_refused_total" refused "Clients accepted past a connection limit and reset.";
    Counter "ringlb_worker_accept_errors_total" accept_errors "Accepts that failed (EMFILE, ENFILE, ...).";
    Counter "ringlb_worker_send_blocked_total" send_blocked "Sends that found their socket full.";
    Counter "ringlb_worker_loop_turns_total" loop_turns "Turns of the worker's loop (one submit and wait each).";
    Counter "ringlb_worker_stuck_revived_total" stuck_revived "Streams found with no operation in flight and re-armed (a bug; should stay 0).";
    Counter "ringlb_worker_buffer_starved_total" buffer_starved "Receives that found the buffer ring empty.";
    Counter "ringlb_worker_received_bytes_total" bytes "Bytes received from clients and backends (each relayed byte once).";
}

/// The whole exposition: (content type, body).
pub(super) fn render(s: &Sample) -> (&'static str, String) {
    let mut e = Exposition::default();
    process(&mut e, s);
    pools(&mut e, s);
    for row in BACKEND {
        e.family(row.name, row.help, row.kind);
        for p in &s.pools {
            for b in &p.backends {
                let addr = b.snap.addr.to_string();
                let labels = [("pool", p.name.as_str()), ("backend", addr.as_str())];
                match &row.read {
                    Read::One(f) => {
                        if let Some(v) = f(b) {
                            e.sample(row.name, &labels, v);
                        }
                    }
                    Read::ByLabel(label, f) => {
                        for (value, v) in f(b) {
                            e.sample(row.name, &[labels[0], labels[1], (label, value)], v);
                        }
                    }
                }
            }
        }
    }
    super::backend_metrics::render(&mut e, s);
    for row in WORKER {
        e.family(row.name, row.help, row.kind);
        for (id, w) in s.workers.iter().enumerate() {
            let id = id.to_string();
            e.sample(row.name, &[("worker", &id)], (row.get)(w) as f64);
        }
    }
    (CONTENT_TYPE, e.finish())
}

fn process(e: &mut Exposition, s: &Sample) {
    e.family(
        "ringlb_build_info",
        "Always 1; the version in a label.",
        Kind::Gauge,
    );
    e.sample(
        "ringlb_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    e.family(
        "ringlb_io_driver",
        "Always 1; the I/O driver the workers run on (io_uring or epoll) in a label.",
        Kind::Gauge,
    );
    e.sample("ringlb_io_driver", &[("driver", s.io.driver.as_str())], 1.0);
    let hash = u64::from_str_radix(&s.config.digest, 16).unwrap_or(0);
    e.family(
        "ringlb_config_hash",
        "First 48 bits of the BLAKE3 of the config file served (the digest in /status).",
        Kind::Gauge,
    );
    e.sample("ringlb_config_hash", &[], hash as f64);
    let counters = [
        (
            "ringlb_config_reloads_total",
            "Config reloads attempted.",
            s.reloads,
        ),
        (
            "ringlb_config_reload_failures_total",
            "Config reloads refused (the old config kept serving).",
            s.reload_failures,
        ),
    ];
    for (name, help, v) in counters {
        e.family(name, help, Kind::Counter);
        e.sample(name, &[], v as f64);
    }
    let gauges = [
        (
            "ringlb_start_time_seconds",
            "Start of the process, Unix time.",
            s.started_unix_s,
        ),
        (
            "ringlb_connections_admitted",
            "Client connections counted against the limits now.",
            f64::from(s.admitted),
        ),
        (
            "ringlb_connections_max",
            "Client connections the server holds at most.",
            f64::from(s.max_connections),
        ),
    ];
    for (name, help, v) in gauges {
        e.family(name, help, Kind::Gauge);
        e.sample(name, &[], v);
    }
    e.family(
        "ringlb_listener_info",
        "Always 1: each listener, its address and pool.",
        Kind::Gauge,
    );
    for (name, addr, pool) in &s.listeners {
        e.sample(
            "ringlb_listener_info",
            &[("listener", name), ("addr", addr), ("pool", pool)],
            1.0,
        );
    }
}

fn pools(e: &mut Exposition, s: &Sample) {
    e.family(
        "ringlb_pool_info",
        "Always 1: each pool and its strategy.",
        Kind::Gauge,
    );
    for p in &s.pools {
        e.sample(
            "ringlb_pool_info",
            &[("pool", &p.name), ("balance", p.balance)],
            1.0,
        );
    }
    e.family(
        "ringlb_pool_queue_length",
        "Clients waiting in the pool's queue now.",
        Kind::Gauge,
    );
    for p in &s.pools {
        e.sample(
            "ringlb_pool_queue_length",
            &[("pool", &p.name)],
            f64::from(p.queue_len),
        );
    }
    let name = "ringlb_pool_queue_wait_seconds";
    e.family(
        name,
        "How long clients dispatched from the pool's queue waited.",
        Kind::Histogram,
    );
    for p in &s.pools {
        let pool = ("pool", p.name.as_str());
        for (bound, count) in WAIT_BUCKETS_US.iter().zip(&p.queue_wait.cumulative) {
            let le = le_seconds(*bound);
            e.sample(
                &format!("{name}_bucket"),
                &[pool, ("le", &le)],
                *count as f64,
            );
        }
        let count = p.queue_wait.count() as f64;
        e.sample(&format!("{name}_bucket"), &[pool, ("le", "+Inf")], count);
        e.sample(
            &format!("{name}_sum"),
            &[pool],
            p.queue_wait.sum_us as f64 / 1e6,
        );
        e.sample(&format!("{name}_count"), &[pool], count);
    }
}
