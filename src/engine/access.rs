//! The access log: one line per client connection when it ends (target `ringlb::access`, at
//! info), with who, where, how long, bytes each way and why it ended; and, for streams open
//! longer than `access_log_interval`, a progress line every interval, so a two-hour WebSocket
//! is visible before it ends. Also where a stream's end is counted on its backend (close
//! reason metrics). Must never be on the per-byte path: it runs once per connection (and once
//! per interval per long stream), and never blocks the worker on anything but the log writer.

use std::fmt;
use std::net::SocketAddr;

use crate::balance::CloseReason;

use super::conn::{Conn, Phase};
use super::token::Side;
use super::worker::Worker;

/// The id of a connection in log lines: worker and that worker's sequence number.
#[derive(Clone, Copy)]
pub(super) struct ConnId {
    pub worker: usize,
    pub seq: u64,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.worker, self.seq)
    }
}

/// An address or "-" when there is none.
struct Addr(Option<SocketAddr>);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Worker {
    pub(super) fn conn_id(&self, conn: &Conn) -> ConnId {
        ConnId {
            worker: self.id,
            seq: conn.seq,
        }
    }

    /// The connection is gone (its slot is being freed, or it never got one): count its end
    /// on its backend and write its access log line.
    pub(super) fn record_end(&self, conn: &Conn) {
        let reason = conn.reason.unwrap_or(CloseReason::Error);
        if let Some(g) = &conn.guard {
            g.record_close(reason);
        }
        if !self.policy.access_log {
            return;
        }
        let listener = self.listener_name(conn.listener);
        let pool = self
            .policy
            .pool_names
            .get(conn.pool)
            .map_or("-", String::as_str);
        tracing::info!(
            target: "ringlb::access",
            conn = %self.conn_id(conn),
            client = %Addr(conn.client_addr.as_deref().copied()),
            listener = %listener,
            pool = %pool,
            backend = %Addr(conn.guard.as_ref().map(|g| g.addr())),
            duration_ms = self.now.saturating_sub(conn.born),
            bytes_up = conn.halves[Side::Client.idx()].received,
            bytes_down = conn.halves[Side::Backend.idx()].received,
            reason = %reason.name(),
            "stream closed"
        );
    }

    /// Progress lines for streams open at least `access_log_interval` since their last line.
    pub(super) fn log_progress(&mut self) {
        let every = self.policy.access_log_interval_ms;
        if every == 0 || !self.policy.access_log {
            return;
        }
        let now = self.now;
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.phase == Phase::Relaying && now >= c.born + u64::from(c.logged_at) + every
            })
            .map(|(key, _)| key)
            .collect();
        for key in due {
            let conn = &self.conns[key];
            tracing::info!(
                target: "ringlb::access",
                conn = %self.conn_id(conn),
                client = %Addr(conn.client_addr.as_deref().copied()),
                listener = %self.listener_name(conn.listener),
                pool = %self.policy.pool_names.get(conn.pool).map_or("-", String::as_str),
                backend = %Addr(conn.guard.as_ref().map(|g| g.addr())),
                duration_ms = now.saturating_sub(conn.born),
                bytes_up = conn.halves[Side::Client.idx()].received,
                bytes_down = conn.halves[Side::Backend.idx()].received,
                "stream open"
            );
            let c = &mut self.conns[key];
            c.logged_at = u32::try_from(now.saturating_sub(c.born)).unwrap_or(u32::MAX);
        }
    }

    fn listener_name(&self, worker_listener: u16) -> &str {
        self.listeners
            .get(worker_listener as usize)
            .and_then(|l| self.policy.listener_names.get(l.index))
            .map_or("-", String::as_str)
    }
}
