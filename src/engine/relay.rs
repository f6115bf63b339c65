//! Moving bytes both ways, unchanged: multishot recv into provided buffers, one send at a time
//! per direction (short sends resumed), FIN passed on as shutdown(SHUT_WR), reset or error on
//! either side ending both, and backpressure when one side reads faster than the other drains.
//!
//! Must never reorder, drop or duplicate a byte, and never close a socket with an op pending.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use super::conn::{Chunk, State};
use super::socket;
use super::token::{self, Op, Side};
use super::uring::Completion;
use super::worker::Worker;

impl Worker {
    /// Starts reading `side` unless it is finished, starved, already reading, or the other side
    /// has `max_unsent` bytes queued (backpressure). A quiet connection gets a multishot recv
    /// (one SQE for the whole stream); while bytes are queued for the other side, single recvs,
    /// so that reading stops exactly at the limit.
    pub(super) fn maybe_arm_recv(&mut self, key: usize, side: Side) {
        let max_unsent = self.max_unsent;
        let conn = &mut self.conns[key];
        if conn.state != State::Relaying {
            return;
        }
        let gen = conn.gen;
        let other = &conn.halves[side.other().idx()];
        let (backlog, quiet) = (other.outq_bytes, other.outq.is_empty());
        let h = conn.half(side);
        if h.recv_armed || h.eof || h.recv_starved || backlog >= max_unsent {
            return;
        }
        let Some(fd) = h.raw() else { return };
        h.recv_armed = true;
        h.recv_paused = false;
        h.recv_multishot = quiet;
        conn.ops += 1;
        let ud = token::encode(Op::Recv(side), key as u32, gen);
        if quiet {
            self.ring.recv_multi(fd, ud);
        } else {
            self.ring.recv_one(fd, ud);
        }
    }

    pub(super) fn on_recv(&mut self, key: usize, side: Side, c: Completion) {
        let more = c.more();
        if !more {
            self.conns[key].half(side).recv_armed = false;
        }
        if c.result > 0 {
            let Some(bid) = c.buffer() else {
                tracing::error!("recv completion without a buffer; resetting connection");
                self.close(key, true);
                return;
            };
            self.ring.bufs_mut().taken(bid);
            self.stats
                .bytes
                .fetch_add(c.result as u64, Ordering::Relaxed);
            let conn = &mut self.conns[key];
            if conn.state != State::Relaying {
                self.ring.bufs_mut().recycle(bid);
                return;
            }
            conn.last_active = self.now;
            if side == Side::Backend && !conn.first_byte_seen && conn.first_request_us > 0 {
                conn.first_byte_seen = true;
                if let Some(g) = &conn.guard {
                    let waited = self.now_us.saturating_sub(conn.first_request_us);
                    g.observe_first_byte(std::time::Duration::from_micros(waited), self.now);
                }
            }
            let len = c.result as u32;
            let dst = conn.half(side.other());
            dst.outq.push_back(Chunk {
                bid,
                offset: 0,
                len,
            });
            dst.outq_bytes += len;
            // Bytes are queueing (a send is still in flight): a multishot recv could take a
            // whole socket buffer's worth before we react, so switch to single recvs.
            let queueing = dst.outq.len() >= 2;
            let gen = conn.gen;
            let src = conn.half(side);
            if queueing && src.recv_armed && src.recv_multishot && !src.recv_paused {
                src.recv_paused = true;
                let target = token::encode(Op::Recv(side), key as u32, gen);
                self.ring.cancel(target, token::encode(Op::Cancel, 0, 0));
            }
            self.kick_send(key, side.other());
            if !more {
                self.maybe_arm_recv(key, side);
            }
            return;
        }
        if c.result == 0 {
            // FIN from this side: pass it on once what it sent has been written.
            self.conns[key].half(side).eof = true;
            self.maybe_shutdown(key, side.other());
            return;
        }
        match -c.result {
            libc::ENOBUFS => {
                let conn = &mut self.conns[key];
                conn.half(side).recv_starved = true;
                self.starved.push((key, conn.gen, side));
                self.stats.buffer_starved.fetch_add(1, Ordering::Relaxed);
            }
            libc::ECANCELED => self.maybe_arm_recv(key, side),
            err => {
                tracing::debug!(?side, error = %std::io::Error::from_raw_os_error(err), "recv failed");
                self.close(key, true);
            }
        }
    }

    /// Sends the head of `side`'s queue if nothing is being sent to it.
    fn kick_send(&mut self, key: usize, side: Side) {
        let conn = &mut self.conns[key];
        if conn.state != State::Relaying {
            return;
        }
        let gen = conn.gen;
        let h = conn.half(side);
        if h.send_inflight {
            return;
        }
        let (Some(chunk), Some(fd)) = (h.outq.front().copied(), h.raw()) else {
            return;
        };
        h.send_inflight = true;
        conn.ops += 1;
        if side == Side::Backend && conn.first_request_us == 0 {
            conn.first_request_us = self.now_us;
        }
        self.ring.send_buf(
            fd,
            chunk.bid,
            chunk.offset,
            chunk.len,
            token::encode(Op::Send(side), key as u32, gen),
        );
    }

    pub(super) fn on_send(&mut self, key: usize, side: Side, result: i32) {
        let conn = &mut self.conns[key];
        conn.half(side).send_inflight = false;
        if conn.state != State::Relaying {
            return;
        }
        if result <= 0 {
            if result < 0 {
                let err = std::io::Error::from_raw_os_error(-result);
                tracing::debug!(?side, error = %err, "send failed");
            }
            self.close(key, true);
            return;
        }
        let sent = result as u32;
        conn.last_active = self.now;
        let h = conn.half(side);
        h.outq_bytes -= sent;
        let mut done_bid = None;
        if let Some(head) = h.outq.front_mut() {
            if sent >= head.len {
                done_bid = Some(head.bid);
                h.outq.pop_front();
            } else {
                head.offset += sent;
                head.len -= sent;
            }
        }
        if let Some(bid) = done_bid {
            self.ring.bufs_mut().recycle(bid);
        }
        self.kick_send(key, side);
        // The other side may have stopped reading for backpressure, or may have sent FIN.
        self.maybe_arm_recv(key, side.other());
        self.maybe_shutdown(key, side);
    }

    /// Shuts down writing to `side` once the other side has sent FIN and all it sent is out.
    fn maybe_shutdown(&mut self, key: usize, side: Side) {
        let conn = &mut self.conns[key];
        if conn.state != State::Relaying || !conn.half(side.other()).eof {
            return;
        }
        let gen = conn.gen;
        let h = conn.half(side);
        if h.shut_started || h.send_inflight || !h.outq.is_empty() {
            return;
        }
        let Some(fd) = h.raw() else { return };
        h.shut_started = true;
        conn.ops += 1;
        self.ring
            .shutdown_write(fd, token::encode(Op::Shutdown(side), key as u32, gen));
    }

    pub(super) fn on_shutdown(&mut self, key: usize, side: Side) {
        let conn = &mut self.conns[key];
        conn.half(side).shut_done = true;
        if conn.state == State::Relaying && conn.both_directions_done() {
            self.stats.completed.fetch_add(1, Ordering::Relaxed);
            self.close(key, false);
        }
    }

    /// Ends a connection: cancels whatever is pending on its sockets. With `reset`, the sockets
    /// close with RST (SO_LINGER 0) so each peer learns the other side failed.
    pub(super) fn close(&mut self, key: usize, reset: bool) {
        let conn = &mut self.conns[key];
        if conn.state == State::Closing {
            return;
        }
        conn.state = State::Closing;
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

    /// Frees the slot once a closing connection has no op left: sockets close, queued buffers
    /// return to the ring, and the backend count is released by dropping the guard.
    pub(super) fn free_if_done(&mut self, key: usize) {
        let done = self
            .conns
            .get(key)
            .is_some_and(|c| c.state == State::Closing && c.ops == 0);
        if !done {
            return;
        }
        let conn = self.conns.remove(key);
        for h in &conn.halves {
            for chunk in &h.outq {
                self.ring.bufs_mut().recycle(chunk.bid);
            }
        }
        let (pool, held) = (conn.pool, conn.guard.is_some());
        // Dropping `conn` closes both sockets and releases the backend's count.
        drop(conn);
        if held {
            self.slot_freed(pool);
        }
    }
}
