//! The mock's `/health`, with the failure modes health checks are tested against: warming up
//! (503 for a while after start, as SGLang does while it loads a model), unhealthy (503),
//! hung (reads the request, never answers), and slow (answers 200 after a delay). The mode is
//! switched at run time through [`MockBackend::set_health`](super::MockBackend::set_health) or
//! `POST /admin/health/{ok,unhealthy,hang}`, and every `/health` request is counted.
//!
//! Must never answer a hung check (that is the point) and never keep a hung connection after
//! its client left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::Conn;
use super::inference::Outcome;
use super::server::Shared;

/// What `/health` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthMode {
    /// 200 "ok".
    Ok,
    /// 503 "unhealthy".
    Unhealthy,
    /// Reads the request and never answers (the connection stays open until the client
    /// leaves).
    Hang,
    /// 200 "ok" after this delay.
    Slow(Duration),
}

/// The switch every connection of one backend reads.
#[derive(Debug)]
pub(crate) struct HealthSwitch {
    mode: Mutex<HealthMode>,
    /// 503 "loading" until then (the `warmup` option), whatever the mode.
    warm_at: Instant,
    checks: AtomicU64,
}

impl HealthSwitch {
    pub(crate) fn new(warmup: Duration, slow: Duration) -> HealthSwitch {
        let mode = if slow.is_zero() {
            HealthMode::Ok
        } else {
            HealthMode::Slow(slow)
        };
        HealthSwitch {
            mode: Mutex::new(mode),
            warm_at: Instant::now() + warmup,
            checks: AtomicU64::new(0),
        }
    }

    pub(crate) fn set(&self, mode: HealthMode) {
        *self.mode.lock() = mode;
    }

    /// `/health` requests received so far.
    pub(crate) fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

/// Answers one `GET /health`.
pub(crate) async fn answer(conn: &mut Conn, shared: &Shared, keep_alive: bool) -> Outcome {
    let switch = &shared.health;
    switch.checks.fetch_add(1, Ordering::Relaxed);
    let mode = *switch.mode.lock();
    let (status, body) = match mode {
        _ if Instant::now() < switch.warm_at => ((503, "Service Unavailable"), "loading"),
        HealthMode::Ok => ((200, "OK"), "ok"),
        HealthMode::Unhealthy => ((503, "Service Unavailable"), "unhealthy"),
        HealthMode::Hang => {
            conn.client_gone().await;
            return Outcome::Drop;
        }
        HealthMode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            ((200, "OK"), "ok")
        }
    };
    let sent = conn
        .respond(
            &shared.name,
            status,
            "text/plain",
            body.as_bytes(),
            keep_alive,
        )
        .await;
    match sent {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Drop,
    }
}

/// `POST /admin/health/MODE`: switches the mode; 404 for an unknown one.
pub(crate) async fn admin(
    conn: &mut Conn,
    shared: &Shared,
    path: &str,
    keep_alive: bool,
) -> Outcome {
    let mode = match path.strip_prefix("/admin/health/") {
        Some("ok") => HealthMode::Ok,
        Some("unhealthy") => HealthMode::Unhealthy,
        Some("hang") => HealthMode::Hang,
        _ => {
            return Outcome::Reject(
                (404, "Not Found"),
                "health modes: ok, unhealthy, hang".to_string(),
            )
        }
    };
    shared.health.set(mode);
    tracing::info!(backend = %shared.name, ?mode, "health mode switched");
    let sent = conn
        .respond(
            &shared.name,
            (200, "OK"),
            "text/plain",
            b"switched",
            keep_alive,
        )
        .await;
    match sent {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Drop,
    }
}
