//! A safety net and a witness: a relaying stream with no operation in flight (a reset watch
//! does not count: it moves nothing), no half waiting for a receive buffer and not finished can
//! never move again (no completion will come for it). That is a bug in the state machine; every few seconds each worker looks for such
//! streams, logs the state of each once (WARN, with its connection id) and drives it, which
//! re-arms whatever its state says is due. Counted in `ringlb_worker_stuck_revived_total`.
//! Must never touch a stream that has an operation pending.

use std::sync::atomic::Ordering;

use super::conn::{Phase, Recv, Watch};
use super::relay::SIDES;
use super::token::Side;
use super::worker::Worker;

impl Worker {
    pub(super) fn revive_stuck(&mut self) {
        let max_unsent = self.max_unsent;
        let stuck: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let watches = c.halves.iter().filter(|h| h.watch == Watch::Armed).count();
                let idle = c.ops as usize == watches
                    && !c.finished()
                    && c.halves.iter().all(|h| h.recv != Recv::Starved);
                let due = SIDES.into_iter().any(|s| {
                    c.recv_plan(s, max_unsent).is_some()
                        || c.send_plan(s).is_some()
                        || c.shutdown_due(s)
                });
                let replay_stalled = c.phase == Phase::Replaying && c.ops == 0;
                (c.phase == Phase::Relaying && (idle || due)) || replay_stalled
            })
            .map(|(key, _)| key)
            .collect();
        for key in stuck {
            let conn = &self.conns[key];
            let (c, b) = (
                &conn.halves[Side::Client.idx()],
                &conn.halves[Side::Backend.idx()],
            );
            tracing::warn!(
                conn = %self.conn_id(conn),
                idle_ms = self.now.saturating_sub(conn.last_active),
                client_recv = ?c.recv,
                client_send = ?c.send,
                client_shut = ?c.shut,
                client_queued = c.outq_bytes,
                client_blocked = c.blocked,
                backend_recv = ?b.recv,
                backend_send = ?b.send,
                backend_shut = ?b.shut,
                backend_queued = b.outq_bytes,
                backend_blocked = b.blocked,
                ops = conn.ops,
                "stream with an operation due but not submitted, or none in flight; driving it (a bug: please report)"
            );
            self.stats.stuck_revived.fetch_add(1, Ordering::Relaxed);
            self.drive(key);
            self.resume_replay(key);
            self.free_if_done(key);
        }
    }
}
