//! Moving bytes both ways, unchanged. Completions record what happened in the connection's
//! state (`conn`); [`Worker::drive`] then submits whatever the state says is due: sends (one at
//! a time per direction, short sends resumed), recvs (multishot while the other side has
//! nothing queued, single recvs up to `max_unsent` otherwise), FIN passed on as
//! shutdown(SHUT_WR), and the close once both directions have ended. A reset or error on either
//! side ends both, and so does any close that would discard bytes (RST, so that a cut stream
//! never looks complete).
//!
//! Must never reorder, drop or duplicate a byte, and never close a socket with an op pending.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use crate::balance::CloseReason;

use super::conn::{Mem, Phase, Recv, RecvPlan, Send, Shut, Watch};
use super::driver::Completion;
use super::replay::EarlyFailure;
use super::socket;
use super::token::{self, Op, Side};
use super::uring::SPILL_BLOCK;
use super::worker::Worker;

pub(super) const SIDES: [Side; 2] = [Side::Client, Side::Backend];

/// The close reason when `side`'s socket failed (a reset, mostly; any socket error ends the
/// stream the same way).
fn reset_by(side: Side) -> CloseReason {
    match side {
        Side::Client => CloseReason::ClientReset,
        Side::Backend => CloseReason::BackendReset,
    }
}

impl Worker {
    /// Submits every op the connection's state says is due: the one place that moves a
    /// relaying connection forward.
    pub(super) fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.phase == Phase::Peeking {
            self.arm_peek(key);
            return;
        }
        if conn.phase != Phase::Relaying {
            return;
        }
        for side in SIDES {
            self.send_if_due(key, side);
        }
        let conn = &mut self.conns[key];
        let gen = conn.gen;
        for side in SIDES {
            if !conn.shutdown_due(side) {
                continue;
            }
            let Some(fd) = conn.half_ref(side).raw() else {
                continue;
            };
            conn.half(side).shut = Shut::Pending;
            conn.ops += 1;
            self.ring
                .shutdown_write(fd, token::encode(Op::Shutdown(side), key as u32, gen));
        }
        for side in SIDES {
            let Some(plan) = conn.recv_plan(side, self.max_unsent) else {
                continue;
            };
            let Some(fd) = conn.half_ref(side).raw() else {
                continue;
            };
            let ud = token::encode(Op::Recv(side), key as u32, gen);
            conn.ops += 1;
            conn.half(side).recv = match plan {
                RecvPlan::Multi => {
                    self.ring.recv_multi(fd, ud);
                    Recv::Multi
                }
                RecvPlan::Single => {
                    self.ring.recv_one(fd, ud);
                    Recv::Single
                }
            };
        }
        for side in SIDES {
            if !conn.watch_due(side, self.max_unsent) {
                continue;
            }
            let Some(fd) = conn.half_ref(side).raw() else {
                continue;
            };
            conn.half(side).watch = Watch::Armed;
            conn.ops += 1;
            self.ring
                .poll_error(fd, token::encode(Op::Watch(side), key as u32, gen));
        }
        if conn.finished() {
            self.stats.completed.fetch_add(1, Ordering::Relaxed);
            let reason = match conn.first_fin {
                Some(Side::Backend) => CloseReason::BackendFin,
                _ => CloseReason::ClientFin,
            };
            self.close(key, reason);
        }
    }

    fn send_if_due(&mut self, key: usize, side: Side) {
        let conn = &mut self.conns[key];
        let Some(chunk) = conn.send_plan(side) else {
            return;
        };
        let Some(fd) = conn.half_ref(side).raw() else {
            return;
        };
        let ud = token::encode(Op::Send(side), key as u32, conn.gen);
        let first_request = side == Side::Backend && conn.first_request_us == 0;
        if first_request {
            conn.first_request_us = self.now_us;
        }
        let submitted = match chunk.mem {
            Mem::Ring(bid) => {
                self.ring.send_now(fd, bid, chunk.offset, chunk.len, ud);
                Some((Send::Now, chunk.len))
            }
            Mem::Spill(id) => {
                let len = chunk.len.min(SPILL_BLOCK - chunk.offset);
                self.ring
                    .send_spill(fd, id, chunk.offset, len, ud)
                    .then_some((Send::Waiting, len))
            }
        };
        let conn = &mut self.conns[key];
        match submitted {
            Some((state, len)) => {
                conn.ops += 1;
                let h = conn.half(side);
                h.send = state;
                h.inflight = len;
                if first_request {
                    self.arm_first_byte(key);
                }
            }
            None => {
                tracing::error!(key, "queued chunk points at no spill block; resetting");
                self.close(key, CloseReason::Error);
            }
        }
    }

    pub(super) fn on_recv(&mut self, key: usize, side: Side, c: Completion) {
        if self.conns[key].phase == Phase::Peeking {
            self.on_peek_recv(key, c);
            return;
        }
        let more = c.more();
        let conn = &mut self.conns[key];
        if !more && conn.half_ref(side).recv != Recv::Eof {
            conn.half(side).recv = Recv::Off;
        }
        if c.result > 0 {
            let Some(bid) = c.buffer() else {
                tracing::error!("recv completion without a buffer; resetting connection");
                self.close(key, CloseReason::Error);
                return;
            };
            self.ring.bufs_mut().taken(bid);
            let len = c.result as u32;
            let conn = &mut self.conns[key];
            let h = conn.half(side);
            h.bulk = len >= self.ring.bufs().buffer_size() || c.sock_nonempty();
            h.received += u64::from(len);
            if let Some(g) = &conn.guard {
                g.add_bytes(side == Side::Client, u64::from(len));
            }
            self.stats
                .bytes
                .fetch_add(u64::from(len), Ordering::Relaxed);
            self.received(key, side, bid, len);
            return;
        }
        if c.result == 0 {
            // A backend that closes without a word after the client's request failed it: the
            // request may go to another backend (a client that sent nothing just left).
            let asked = self.conns[key].half_ref(Side::Client).received > 0;
            if side == Side::Backend
                && asked
                && self.backend_failed_early(key, EarlyFailure::Closed)
            {
                return;
            }
            // FIN from this side: passed on once what it sent has been written (drive).
            let conn = &mut self.conns[key];
            conn.half(side).recv = Recv::Eof;
            conn.first_fin.get_or_insert(side);
            self.refresh_idle_deadline(key);
            self.drive(key);
            return;
        }
        match -c.result {
            libc::ENOBUFS => {
                let conn = &mut self.conns[key];
                conn.half(side).recv = Recv::Starved;
                self.starved.push((key, conn.gen, side));
                self.stats.buffer_starved.fetch_add(1, Ordering::Relaxed);
            }
            libc::ECANCELED => self.drive(key),
            err => {
                tracing::debug!(
                    conn = %self.conn_id(&self.conns[key]),
                    ?side,
                    error = %std::io::Error::from_raw_os_error(err),
                    "recv failed"
                );
                // A reset before the backend's first byte: `passive_early_close` counts it,
                // and the request may go to another backend.
                if side == Side::Backend && self.backend_failed_early(key, EarlyFailure::Closed) {
                    return;
                }
                self.close(key, reset_by(side));
            }
        }
    }

    /// `len` bytes arrived from `side` in buffer `bid`: queue them for the other side.
    fn received(&mut self, key: usize, side: Side, bid: u16, len: u32) {
        let conn = &mut self.conns[key];
        match conn.phase {
            Phase::Relaying => {}
            Phase::Replaying if side == Side::Client => {
                // Bound for the next backend with the rest of the copy.
                self.keep_for_replay(key, bid, len);
                self.ring.bufs_mut().recycle(bid);
                return;
            }
            _ => {
                self.ring.bufs_mut().recycle(bid);
                return;
            }
        }
        conn.last_active = self.now;
        // Cheaper than asking the pool whether it tells idle streams apart.
        let woke = side == Side::Backend
            && conn
                .guard
                .as_ref()
                .is_some_and(|g| g.backend_sent(self.now));
        if woke {
            self.watch_quiet(key);
        }
        match side {
            // Before `queue_received`, which may give the buffer back.
            Side::Client => self.keep_for_replay(key, bid, len),
            Side::Backend => self.conns[key].replay = None,
        }
        let conn = &mut self.conns[key];
        if side == Side::Backend && !conn.first_byte_seen && conn.first_request_us > 0 {
            conn.first_byte_seen = true;
            if let Some(g) = &conn.guard {
                let waited = self.now_us.saturating_sub(conn.first_request_us);
                g.observe_first_byte(std::time::Duration::from_micros(waited), self.now);
            }
        }
        if let Err(e) = self.queue_received(key, side.other(), bid, len) {
            tracing::warn!(error = %e, "cannot hold bytes for a slow peer; resetting connection");
            self.close(key, CloseReason::Error);
            return;
        }
        // Submit the send first: only bytes behind a send in flight mean the multishot recv
        // outruns the other side.
        self.drive(key);
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Relaying && conn.multishot_overruns(side) {
            conn.half(side).recv = Recv::Cancelling;
            let target = token::encode(Op::Recv(side), key as u32, conn.gen);
            self.ring.cancel(target, token::encode(Op::Cancel, 0, 0));
        }
    }

    pub(super) fn on_send(&mut self, key: usize, side: Side, result: i32) {
        let conn = &mut self.conns[key];
        let h = conn.half(side);
        let (was, inflight) = (h.send, h.inflight);
        h.send = Send::Idle;
        h.inflight = 0;
        if conn.phase != Phase::Relaying {
            return;
        }
        if result == -libc::EAGAIN && was == Send::Now {
            self.stats.send_blocked.fetch_add(1, Ordering::Relaxed);
            self.block(key, side);
            return;
        }
        if result <= 0 {
            if result < 0 {
                let err = std::io::Error::from_raw_os_error(-result);
                tracing::debug!(conn = %self.conn_id(&self.conns[key]), ?side, error = %err, "send failed");
                if side == Side::Backend && self.backend_failed_early(key, EarlyFailure::Closed) {
                    return;
                }
            }
            self.close(key, reset_by(side));
            return;
        }
        let sent = result as u32;
        self.conns[key].last_active = self.now;
        self.consume_sent(key, side, sent);
        if was == Send::Now && sent < inflight {
            self.stats.send_blocked.fetch_add(1, Ordering::Relaxed);
            self.block(key, side);
            return;
        }
        self.drive(key);
    }

    /// The socket of `side` is full: its queued bytes move out of the receive buffers.
    fn block(&mut self, key: usize, side: Side) {
        if let Err(e) = self.spill_queue(key, side) {
            tracing::warn!(error = %e, "cannot hold bytes for a slow peer; resetting connection");
            self.close(key, CloseReason::Error);
            return;
        }
        self.drive(key);
    }

    /// The reset watch on `side` fired: an error means the peer reset (or the socket failed),
    /// so the stream is cut now rather than when reading resumes.
    pub(super) fn on_watch(&mut self, key: usize, side: Side, result: i32) {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Relaying || result < 0 {
            conn.half(side).watch = Watch::Off;
            return;
        }
        let revents = result as i16;
        if revents & libc::POLLERR != 0 {
            tracing::debug!(conn = %self.conn_id(&self.conns[key]), ?side, "reset seen by the watch");
            if side == Side::Backend && self.backend_failed_early(key, EarlyFailure::Closed) {
                return;
            }
            self.close(key, reset_by(side));
            return;
        }
        conn.half(side).watch = Watch::Spent;
        self.drive(key);
    }

    pub(super) fn on_shutdown(&mut self, key: usize, side: Side) {
        self.conns[key].half(side).shut = Shut::Done;
        self.drive(key);
    }

    /// Ends a connection for `reason`: cancels whatever is pending on its sockets. After a
    /// reset or a local error, or when a relaying stream is cut before both directions have
    /// ended, the sockets close with RST (SO_LINGER 0) so each peer learns the stream was cut
    /// rather than finished.
    pub(super) fn close(&mut self, key: usize, reason: CloseReason) {
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Closing {
            return;
        }
        conn.reason = Some(reason);
        let reset = matches!(
            reason,
            CloseReason::ClientReset | CloseReason::BackendReset | CloseReason::Error
        );
        let live = matches!(conn.phase, Phase::Relaying | Phase::Replaying);
        // Bytes queued for a backend still being connected are the client's (a replay's).
        let discarding = conn.phase != Phase::Queued && conn.holds_bytes();
        // A FIN tells a peer the other side has finished. Cutting a stream that has not (a
        // timeout, max age, stop) must say so with a reset, or a client takes a cut answer
        // for a complete one (the soak found half-closed streams cut by a timeout that way).
        let cut = live && !conn.finished();
        conn.phase = Phase::Closing;
        let reset = reset || discarding || cut;
        if discarding {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        if reset {
            self.stats.resets.fetch_add(1, Ordering::Relaxed);
        }
        let pending = conn.ops > 0;
        for h in conn.halves.iter() {
            let Some(fd) = h.fd.as_ref() else { continue };
            if reset {
                socket::set_linger_zero(fd);
            }
            if pending {
                self.ring
                    .cancel_fd(fd.as_raw_fd(), token::encode(Op::Cancel, 0, 0));
            }
        }
    }

    /// Resets every relayed stream whose backend an active check took down with
    /// `on_down = "reset"` (the worker calls this when `balance::reset_epoch` moves).
    pub(super) fn reset_requested_streams(&mut self) {
        let cut: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Relaying)
            .filter(|(_, c)| c.guard.as_ref().is_some_and(|g| g.reset_requested()))
            .map(|(key, _)| key)
            .collect();
        for key in cut {
            self.close(key, CloseReason::HealthDown);
        }
    }

    /// Frees the slot once a closing connection has no op left: sockets close, queued memory
    /// goes back, the backend count is released (dropping the guard) and so is the admission.
    pub(super) fn free_if_done(&mut self, key: usize) {
        let done = self
            .conns
            .get(key)
            .is_some_and(|c| c.phase == Phase::Closing && c.ops == 0);
        if !done {
            return;
        }
        self.end_peek(key);
        let mut conn = self.conns.remove(key);
        self.record_end(&conn);
        for h in conn.halves.iter_mut() {
            for chunk in std::mem::take(&mut h.outq) {
                self.release(chunk.mem);
            }
        }
        let (pool, held, listener) = (conn.pool, conn.guard.is_some(), conn.listener);
        // Dropping `conn` closes both sockets and releases the backend's count.
        drop(conn);
        self.admission_released(listener as usize);
        if held {
            self.slot_freed(pool);
        }
    }
}
