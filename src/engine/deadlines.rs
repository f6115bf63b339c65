//! What happens when a connection's deadline passes: a connect that took too long, a client
//! that waited too long in the queue, a stream idle for its idle (or half-close) timeout, or one
//! past its max connection age. Each connection has one live deadline on the worker's timer
//! heap; entries for an older deadline are ignored when they fire.
//!
//! A stream cut here with bytes still queued is reset, never closed with FIN (see `relay`).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use crate::balance::CloseReason;

use super::conn::{Conn, Phase, NEVER};
use super::replay::EarlyFailure;
use super::token::Side;
use super::worker::Worker;

/// A stream past its max connection age is closed once no byte has flowed for this long.
const AGE_QUIET_MS: u64 = 1000;

impl Worker {
    pub(super) fn fire_timers(&mut self) {
        while let Some(d) = self.timers.pop_due(self.now) {
            let key = d.index as usize;
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            if conn.gen != d.gen || conn.deadline != d.at_ms {
                continue;
            }
            match conn.phase {
                Phase::Peeking => self.peek_timed_out(key),
                Phase::Connecting => self.connect_timed_out(key),
                Phase::Queued => self.queue_timed_out(key),
                Phase::Relaying => self.relaying_deadline(key),
                // The next backend's connect sets a deadline of its own.
                Phase::Replaying | Phase::Closing => {}
            }
            self.free_if_done(key);
        }
        let conns = &self.conns;
        self.timers.compact_if_needed(conns.len(), |index, gen| {
            conns.get(index as usize).is_some_and(|c| c.gen == gen)
        });
    }

    /// Idle (or half-close) timeout and max connection age of a relaying stream; re-arms its
    /// timer otherwise.
    fn relaying_deadline(&mut self, key: usize) {
        let now = self.now;
        let acked = self.bytes_acked(key);
        let conn = &mut self.conns[key];
        // Bytes leaving our send buffers are bytes moving: a peer slowly reading a large answer
        // (or upload) that ringlb handed to the kernel long ago is not idle. (The soak found
        // half-closed uploads cut by the half-close timeout while the backend still read them.)
        // Growth since the last sample counts as activity now; `idle_deadline` makes sure a
        // sample is taken halfway through a quiet stretch, so the timeout itself is exact.
        if conn.acked_at != NEVER && acked > conn.acked_seen {
            conn.last_active = conn.last_active.max(now);
        }
        (conn.acked_seen, conn.acked_at) = (acked, now);
        let idle_due = conn.last_active + conn.idle_limit_ms();
        let conn = &self.conns[key];
        if now >= idle_due {
            let (counter, reason) = if conn.half_closed() {
                (
                    &self.stats.half_close_timeouts,
                    CloseReason::HalfCloseTimeout,
                )
            } else {
                (&self.stats.idle_timeouts, CloseReason::IdleTimeout)
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                conn = %self.conn_id(conn),
                half_closed = conn.half_closed(),
                "idle timeout"
            );
            self.close(key, reason);
            return;
        }
        let mut next = idle_deadline(conn);
        if let Some(due) = self.count_quiet(key) {
            next = next.min(due);
        }
        let conn = &self.conns[key];
        if let Some(due) = first_byte_due(conn) {
            if now >= due {
                self.stats
                    .first_byte_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn = %self.conn_id(conn), "no first byte within first_byte_timeout");
                if !self.backend_failed_early(key, EarlyFailure::Silent) {
                    self.close(key, CloseReason::FirstByteTimeout);
                }
                return;
            }
            next = next.min(due);
        }
        if conn.age_soft > 0 {
            let quiet_at = conn.last_active + AGE_QUIET_MS;
            if now >= conn.age_soft && (now >= conn.age_hard || now >= quiet_at) {
                tracing::debug!(conn = %self.conn_id(conn), "max connection age");
                self.stats.age_closes.fetch_add(1, Ordering::Relaxed);
                self.close(key, CloseReason::MaxAge);
                return;
            }
            let age_next = if now < conn.age_soft {
                conn.age_soft
            } else {
                conn.age_hard.min(quiet_at)
            };
            next = next.min(age_next);
        }
        self.set_deadline(key, next);
    }

    /// Bytes the peers of both sockets have acknowledged so far (0 where the kernel says
    /// nothing).
    fn bytes_acked(&self, key: usize) -> u64 {
        self.conns[key]
            .halves
            .iter()
            .filter_map(|h| h.fd.as_ref())
            .filter_map(|fd| super::uring::tcp_bytes_acked(fd.as_raw_fd()))
            .sum()
    }

    /// Makes `at` the connection's one live deadline.
    pub(super) fn set_deadline(&mut self, key: usize, at: u64) {
        let conn = &mut self.conns[key];
        conn.deadline = at;
        self.timers.push(at, key as u32, conn.gen);
    }

    /// The idle limit just got shorter (the stream became half closed): bring the deadline
    /// forward if it is now due earlier.
    pub(super) fn refresh_idle_deadline(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.phase != Phase::Relaying {
            return;
        }
        let due = idle_deadline(conn);
        if due < conn.deadline {
            self.set_deadline(key, due);
        }
    }

    /// The first request byte just went to the backend: bring the deadline forward to the
    /// first-byte timeout if the pool has one.
    pub(super) fn arm_first_byte(&mut self, key: usize) {
        let conn = &self.conns[key];
        if let Some(due) = first_byte_due(conn).filter(|&due| due < conn.deadline) {
            self.set_deadline(key, due);
        }
    }

    /// Starts the relaying deadlines of a stream that just connected: idle timeout, and max
    /// connection age (spread by the pool's jitter) if the pool has one. A stream replayed to
    /// another backend keeps the age it had.
    pub(super) fn start_relaying_deadlines(&mut self, key: usize) {
        let pool = self.conns[key].pool;
        let (age, jitter) = match self.policy.pools.get(pool) {
            Some(p) => (p.max_age_ms, p.max_age_jitter_ms),
            None => (None, 0),
        };
        if let Some(age) = age.filter(|_| self.conns[key].age_soft == 0) {
            let spread = if jitter > 0 {
                rand::random::<u64>() % (jitter + 1)
            } else {
                0
            };
            let soft = self.now + age + spread;
            let conn = &mut self.conns[key];
            conn.age_soft = soft;
            // A stream that is never quiet for a second is closed a tenth of the age later.
            conn.age_hard = soft + (age / 10).max(AGE_QUIET_MS);
        }
        let conn = &self.conns[key];
        let mut due = idle_deadline(conn);
        if conn.age_soft > 0 {
            due = due.min(conn.age_soft);
        }
        // A new stream counts busy until its backend has been silent for `idle_after`.
        if let Some(g) = &conn.guard {
            let _ = g.backend_sent(self.now);
        }
        if let Some(quiet) = self.count_quiet(key) {
            due = due.min(quiet);
        }
        self.set_deadline(key, due);
    }

    /// A stream counted idle is busy again: make sure its deadline comes by the time it could
    /// be idle again (the deadline may be as far as the idle timeout away).
    pub(super) fn watch_quiet(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.phase != Phase::Relaying {
            return;
        }
        if let Some(due) = self.count_quiet(key).filter(|&due| due < conn.deadline) {
            self.set_deadline(key, due);
        }
    }

    /// `count = "generating"`: counts the stream idle on its backend if the backend has been
    /// silent for the pool's `idle_after`; returns when to look again while it is busy. The
    /// stream's one deadline serves, so a busy stream costs a timer pop per `idle_after`, no
    /// timer of its own, and a recv only a store in its guard.
    fn count_quiet(&self, key: usize) -> Option<u64> {
        let conn = &self.conns[key];
        let idle_after = self.policy.pools.get(conn.pool)?.idle_after_ms;
        let guard = conn.guard.as_ref().filter(|_| idle_after > 0)?;
        guard.mark_quiet_if_due(self.now, idle_after);
        guard.quiet_due(self.now, idle_after)
    }
}

/// When the backend's first byte is overdue: `first_byte_timeout` after the first request
/// byte went to it, while it has sent none (None: off, not asked yet, or answered).
fn first_byte_due(conn: &Conn) -> Option<u64> {
    let waiting = conn.first_byte_timeout_ms > 0
        && conn.first_request_us > 0
        && conn.half_ref(Side::Backend).received == 0;
    waiting.then(|| conn.first_request_us / 1000 + u64::from(conn.first_byte_timeout_ms))
}

/// When the idle (or half-close) timer of `conn` should fire next: at the timeout, or halfway
/// there first if the peers' acknowledgements have not been sampled since the stream went
/// quiet (the sample the timeout compares with).
fn idle_deadline(conn: &Conn) -> u64 {
    let limit = conn.idle_limit_ms();
    let mid = conn.last_active + limit / 2;
    if conn.acked_at != NEVER && conn.acked_at >= mid {
        conn.last_active + limit
    } else {
        mid
    }
}
