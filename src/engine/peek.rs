//! Reading a new client's first bytes to decide where it goes (content routing, a PROXY
//! header from an L4 hop in front, a session key for `hash`): the connection is `Peeking`
//! until `route::Peek` gives a verdict, with nothing connected. Each recv is copied out of its
//! receive buffer at once (a peeking client pins no ring buffer) into the connection's own
//! bytes, which are then queued for the chosen backend unchanged (minus an accepted PROXY
//! header), ahead of anything the client sends next.
//!
//! All peeking connections of a worker hold at most `peek_memory_max` bytes together: past it,
//! new ones wait their turn to start reading. Must never relay a byte out of order, never
//! forward an accepted PROXY header, and never leave a peeking client without a deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::balance::CloseReason;
use crate::route::{encode_v1, encode_v2, Peek, ProxyVersion, Reason, Routes, Verdict};

use super::conn::{Phase, Recv};
use super::driver::Completion;
use super::token::{self, Op, Side};
use super::worker::Worker;

/// Waiting clients let in to read each time peek memory is given back.
const PEEK_WAKE_BATCH: usize = 16;

/// One client's bytes so far and its routing decision in progress.
pub struct PeekState {
    peek: Peek,
    buf: Vec<u8>,
}

impl Worker {
    /// Starts reading the first bytes of the client of `key` (already in the slab), with the
    /// listener's peek timeout as its deadline.
    pub(super) fn start_peeking(&mut self, key: usize, routes: Arc<Routes>) {
        let timeout_ms = u64::try_from(routes.settings().timeout.as_millis()).unwrap_or(u64::MAX);
        let conn = &mut self.conns[key];
        conn.phase = Phase::Peeking;
        conn.peek = Some(Box::new(PeekState {
            peek: Peek::new(routes),
            buf: Vec::new(),
        }));
        self.set_deadline(key, self.now.saturating_add(timeout_ms));
        self.arm_peek(key);
    }

    /// Arms the next read of a peeking client, unless one is armed; a client that has not
    /// sent a byte yet waits while the worker's peek memory is spent.
    pub(super) fn arm_peek(&mut self, key: usize) {
        let conn = &self.conns[key];
        let h = conn.half_ref(Side::Client);
        let (Phase::Peeking, Recv::Off, Some(fd)) = (conn.phase, h.recv, h.raw()) else {
            return;
        };
        let fresh = conn.peek.as_ref().is_none_or(|p| p.buf.is_empty());
        if fresh && self.peek_bytes >= self.policy.peek_memory_max {
            if !self.peek_waiting.iter().any(|&(k, _)| k == key) {
                self.peek_waiting.push_back((key, conn.gen));
                self.stats.peek_waits.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let ud = token::encode(Op::Recv(Side::Client), key as u32, conn.gen);
        let conn = &mut self.conns[key];
        conn.ops += 1;
        conn.half(Side::Client).recv = Recv::Single;
        self.ring.recv_one(fd, ud);
    }

    /// A read of a peeking client completed.
    pub(super) fn on_peek_recv(&mut self, key: usize, c: Completion) {
        self.conns[key].half(Side::Client).recv = Recv::Off;
        if c.result > 0 {
            let Some(bid) = c.buffer() else {
                tracing::error!("recv completion without a buffer; resetting connection");
                self.close(key, CloseReason::Error);
                return;
            };
            self.ring.bufs_mut().taken(bid);
            let len = c.result as u32;
            let mut state = self.conns[key].peek.take();
            let copied = state
                .as_mut()
                .is_some_and(|s| self.ring.copy_from_buffer(bid, 0, len, &mut s.buf));
            self.ring.bufs_mut().recycle(bid);
            let conn = &mut self.conns[key];
            conn.peek = state;
            if !copied {
                self.close(key, CloseReason::Error);
                return;
            }
            conn.half(Side::Client).received += u64::from(len);
            conn.last_active = self.now;
            self.peek_bytes += u64::from(len);
            let verdict = conn
                .peek
                .as_mut()
                .map_or(Verdict::Reject(Reason::Closed), |s| s.peek.feed(&s.buf));
            self.peek_decided(key, verdict);
            return;
        }
        match c.result {
            0 => {
                let conn = &mut self.conns[key];
                conn.half(Side::Client).recv = Recv::Eof;
                conn.first_fin.get_or_insert(Side::Client);
                let verdict = conn
                    .peek
                    .as_mut()
                    .map_or(Verdict::Reject(Reason::Closed), |s| s.peek.on_eof(&s.buf));
                self.peek_decided(key, verdict);
            }
            r if r == -libc::ENOBUFS => {
                let conn = &mut self.conns[key];
                conn.half(Side::Client).recv = Recv::Starved;
                self.starved.push((key, conn.gen, Side::Client));
                self.stats.buffer_starved.fetch_add(1, Ordering::Relaxed);
            }
            r if r == -libc::ECANCELED => {}
            _ => self.close(key, CloseReason::ClientReset),
        }
    }

    /// The peek timeout of `key` passed: decide with what arrived, or close.
    pub(super) fn peek_timed_out(&mut self, key: usize) {
        let verdict = self.conns[key]
            .peek
            .as_mut()
            .map_or(Verdict::Reject(Reason::Timeout), |s| {
                s.peek.on_timeout(&s.buf)
            });
        self.peek_decided(key, verdict);
    }

    fn peek_decided(&mut self, key: usize, verdict: Verdict) {
        match verdict {
            Verdict::NeedMore => self.arm_peek(key),
            Verdict::Reject(why) => {
                let (counter, reason) = match why {
                    Reason::Timeout => (&self.stats.peek_timeouts, CloseReason::PeekTimeout),
                    Reason::Closed => (&self.stats.peek_rejects, CloseReason::ClientFin),
                    Reason::PeekMax | Reason::BadProxy => {
                        (&self.stats.peek_rejects, CloseReason::PeekRejected)
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn = %self.conn_id(&self.conns[key]), reason = why.as_str(), "closing a client the peek could not route");
                self.end_peek(key);
                self.close(key, reason);
            }
            Verdict::Route {
                pool,
                hash,
                proxy,
                skip,
                body_capped,
                ..
            } => {
                if body_capped {
                    self.stats.peek_body_capped.fetch_add(1, Ordering::Relaxed);
                }
                let Some(state) = self.end_peek(key) else {
                    self.close(key, CloseReason::Error);
                    return;
                };
                let conn = &mut self.conns[key];
                conn.pool = pool;
                if let Some(src) = proxy.and_then(|p| p.src) {
                    conn.client_addr = Some(Box::new(src));
                }
                let bytes = state.buf.get(skip..).unwrap_or_default();
                let cap = self.policy.pools.get(pool).map_or(0, |p| p.replay_buffer);
                if cap > 0 && bytes.len() <= cap as usize {
                    conn.replay = Some(Box::new(bytes.to_vec()));
                }
                if let Err(e) = self.append_bytes(key, Side::Backend, bytes) {
                    tracing::warn!(error = %e, "cannot hold a peeked request; resetting connection");
                    self.close(key, CloseReason::Error);
                    return;
                }
                self.dispatch(key, hash);
            }
        }
    }

    /// Takes the peek state out of `key`, gives its bytes back to the worker's peek budget
    /// and lets waiting clients start reading.
    pub(super) fn end_peek(&mut self, key: usize) -> Option<Box<PeekState>> {
        let state = self.conns.get_mut(key)?.peek.take()?;
        self.peek_bytes = self.peek_bytes.saturating_sub(state.buf.len() as u64);
        // A few at a time: a waiting client reserves nothing until its bytes arrive.
        for _ in 0..PEEK_WAKE_BATCH {
            if self.peek_bytes >= self.policy.peek_memory_max {
                break;
            }
            let Some((k, gen)) = self.peek_waiting.pop_front() else {
                break;
            };
            if self.conns.get(k).is_some_and(|c| c.gen == gen) {
                self.arm_peek(k);
            }
        }
        Some(state)
    }
}

impl Worker {
    /// The backend of `key` just connected: if its pool has `send_proxy`, queue the PROXY
    /// header (the client's address, and the address it connected to) ahead of its bytes.
    /// False if the header could not be made; the stream must then not go on.
    pub(super) fn send_proxy_header(&mut self, key: usize) -> bool {
        let conn = &self.conns[key];
        let Some(version) = self.policy.pools.get(conn.pool).and_then(|p| p.send_proxy) else {
            return true;
        };
        let local = conn.halves[Side::Client.idx()]
            .fd
            .as_ref()
            .and_then(|fd| socket2::SockRef::from(fd).local_addr().ok())
            .and_then(|a| a.as_socket());
        let (Some(src), Some(dst)) = (conn.client_addr.as_deref().copied(), local) else {
            tracing::warn!(conn = %self.conn_id(conn), "no client address for the PROXY header; resetting");
            return false;
        };
        let header = match version {
            ProxyVersion::V1 => encode_v1(src, dst),
            ProxyVersion::V2 => encode_v2(src, dst),
        };
        self.prepend_bytes(key, Side::Backend, header.as_bytes())
            .is_ok()
    }
}
