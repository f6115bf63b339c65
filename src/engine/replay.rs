//! Moving a stream to another backend when its backend failed before sending a byte: it reset
//! or closed right after the request, or stayed silent past the pool's `first_byte_timeout`.
//! Until the backend's first byte, the client's bytes are also kept in a copy (up to the
//! pool's `replay_buffer`); on such a failure the old backend's ops are cancelled, and once
//! none is left the copy goes to a newly picked backend ahead of anything the client sends
//! next. The client sees nothing but a slower answer.
//!
//! Must never replay once the client could have seen a byte of the failed backend (the
//! backend half received nothing), never replay a copy that misses a byte the client sent,
//! and never touch the old socket's memory while one of its ops is pending.

use std::sync::atomic::Ordering;

use crate::balance::CloseReason;

use super::conn::{Half, Phase, Recv, Watch};
use super::token::Side;
use super::worker::Worker;

/// How a backend failed before its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EarlyFailure {
    /// It reset (or its socket failed) or sent FIN.
    Closed,
    /// `first_byte_timeout` passed.
    Silent,
}

impl Worker {
    /// Keeps a copy of `len` client bytes in buffer `bid` while the backend has not answered;
    /// drops the copy for good once it would pass the pool's `replay_buffer`.
    pub(super) fn keep_for_replay(&mut self, key: usize, bid: u16, len: u32) {
        let conn = &self.conns[key];
        if conn.half_ref(Side::Backend).received > 0 {
            return;
        }
        let cap = self
            .policy
            .pools
            .get(conn.pool)
            .map_or(0, |p| p.replay_buffer);
        // No copy after earlier bytes: it was dropped, and a replay can no longer be whole.
        // (A copy may hold less than was received: a PROXY header the peek took off.)
        let before = conn.half_ref(Side::Client).received - u64::from(len);
        let held = match conn.replay.as_ref() {
            Some(r) => r.len() as u64,
            None if before == 0 => 0,
            None => return,
        };
        if held + u64::from(len) > u64::from(cap) {
            self.conns[key].replay = None;
            return;
        }
        let mut copy = self.conns[key].replay.take().unwrap_or_default();
        if self.ring.copy_from_buffer(bid, 0, len, &mut copy) {
            self.conns[key].replay = Some(copy);
        }
    }

    /// The backend of a relaying stream failed before its first byte. Returns true if the
    /// stream is being moved to another backend; false if it cannot be (no copy, replays
    /// off, retries spent): the caller ends it as it would have.
    pub(super) fn backend_failed_early(&mut self, key: usize, how: EarlyFailure) -> bool {
        let now = self.now;
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Relaying || conn.half_ref(Side::Backend).received > 0 {
            return false;
        }
        if let Some(g) = &conn.guard {
            match how {
                EarlyFailure::Closed => {
                    g.early_close(now);
                }
                EarlyFailure::Silent => {
                    g.first_byte_timed_out(now);
                }
            }
        }
        let policy = self.policy.pools.get(conn.pool).copied();
        let retries = policy.map_or(0, |p| p.retries);
        let replay_on = policy.is_some_and(|p| p.replay_buffer > 0);
        let whole = conn.replay.is_some() || conn.half_ref(Side::Client).received == 0;
        let attempts = conn.tried.len() as u32 + 1;
        if !replay_on || !whole || attempts > retries {
            return false;
        }
        if let Some(g) = &conn.guard {
            conn.tried.push(g.addr());
            g.record_close(match how {
                EarlyFailure::Closed => CloseReason::BackendReset,
                EarlyFailure::Silent => CloseReason::FirstByteTimeout,
            });
        }
        conn.phase = Phase::Replaying;
        self.stats.replays.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(conn = %self.conn_id(&self.conns[key]), ?how, "backend failed before its first byte; replaying to another");
        let conn = &self.conns[key];
        if let Some(fd) = conn.half_ref(Side::Backend).fd.as_ref() {
            // A silent backend learns the stream is gone; a reset one is past caring.
            super::socket::set_linger_zero(fd);
        }
        if conn.ops > 0 {
            for h in conn.halves.iter() {
                if let Some(fd) = h.raw() {
                    self.ring
                        .cancel_fd(fd, super::token::encode(super::token::Op::Cancel, 0, 0));
                }
            }
        }
        self.resume_replay(key);
        true
    }

    /// Once a replaying stream has no op left: closes the old backend socket and connects
    /// another backend with the client's bytes queued for it. Called after every completion.
    pub(super) fn resume_replay(&mut self, key: usize) {
        let ready = self
            .conns
            .get(key)
            .is_some_and(|c| c.phase == Phase::Replaying && c.ops == 0);
        if !ready {
            return;
        }
        let conn = &mut self.conns[key];
        let old = std::mem::replace(conn.half(Side::Backend), Half::new(None));
        let client = conn.half(Side::Client);
        if client.recv != Recv::Eof {
            client.recv = Recv::Off;
        }
        client.watch = Watch::Off;
        let pool = conn.pool;
        let whole = conn.replay.is_some() || conn.half_ref(Side::Client).received == 0;
        // Dropping the guard releases the failed backend's count.
        conn.guard = None;
        conn.first_request_us = 0;
        for chunk in old.outq {
            self.release(chunk.mem);
        }
        drop(old.fd);
        self.slot_freed(pool);
        let next = if whole { self.pick_another(key) } else { None };
        let Some(pick) = next else {
            // Bytes the client sent while the old ops were cancelled did not fit the copy, or
            // no backend is left: the stream ends with a reset, as the failure would have.
            self.conns[key].phase = Phase::Relaying;
            self.close(key, CloseReason::BackendReset);
            return;
        };
        let copy = self.conns[key].replay.take();
        if let Some(bytes) = copy.as_deref() {
            if let Err(e) = self.append_bytes(key, Side::Backend, bytes) {
                tracing::warn!(error = %e, "cannot hold a replay's bytes; resetting connection");
                drop(pick);
                self.conns[key].phase = Phase::Relaying;
                self.close(key, CloseReason::Error);
                return;
            }
        }
        let conn = &mut self.conns[key];
        conn.replay = copy;
        conn.phase = Phase::Connecting;
        self.connect_to(key, pick);
    }
}
