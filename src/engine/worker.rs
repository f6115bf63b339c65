//! One worker thread: its ring, its listening sockets and its slab of connections, driven by
//! a completion loop with one submit-and-wait per turn.
//!
//! The per-connection path takes no lock: the shared backend table is read lock-free and the
//! slab, ring and timers belong to this thread alone. A worker must never block anywhere but
//! in `submit_and_wait`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::balance::TableCache;
use crate::clock;

use super::conn::{Conn, State};
use super::queue::{LocalQueues, QueueShared};
use super::stats::WorkerStats;
use super::timer::Timers;
use super::token::{self, Op, Side};
use super::uring::{Completion, Ring};
use super::EngineError;

/// Longest wait in the kernel without a reason to wake: a bound on how stale `now` can get
/// for timers and how late a missed wake-up could be noticed.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Pause before re-arming accept after it failed (EMFILE, ENFILE, ENOMEM): lets closes free
/// descriptors instead of spinning on a failing accept.
const ACCEPT_RETRY_MS: u64 = 100;
/// A stream past its max connection age is closed once no byte has flowed for this long.
const AGE_QUIET_MS: u64 = 1000;
/// How long a stopping worker waits for cancelled ops to complete before giving up.
const DRAIN_MS: u64 = 2000;

pub(super) struct WorkerListener {
    pub fd: OwnedFd,
    pub pool: usize,
    pub armed: bool,
    /// Accept failed: re-arm not before this time.
    pub retry_at: u64,
}

pub(super) struct Worker {
    pub id: usize,
    pub ring: Ring,
    pub conns: Slab<Conn>,
    pub listeners: Vec<WorkerListener>,
    /// This worker's view of the shared table (no shared write per load).
    pub table: TableCache,
    pub timers: Timers,
    /// Loop-turn time in milliseconds (timers) and microseconds (latency samples).
    pub now: u64,
    pub now_us: u64,
    pub queues: LocalQueues,
    pub queues_shared: Arc<QueueShared>,
    /// Per-slot generation counters, kept past a slot's reuse so late completions are dropped.
    pub gens: Vec<u32>,
    /// Sides whose recv ended for lack of buffers, to re-arm once buffers are back.
    pub starved: Vec<(usize, u32, Side)>,
    pub max_unsent: u32,
    pub stop: Arc<AtomicBool>,
    pub stopping: bool,
    pub stats: Arc<WorkerStats>,
}

impl Worker {
    pub fn run(mut self) -> Result<(), EngineError> {
        self.tick();
        self.ring.arm_waker(token::encode(Op::Wake, 0, 0));
        self.arm_listeners();
        let mut completions: Vec<Completion> = Vec::with_capacity(1024);
        let mut drain_deadline = None;
        loop {
            let wait = self.wait_time();
            self.ring.submit_and_wait(wait, &mut completions)?;
            self.tick();
            for c in completions.drain(..) {
                self.handle(c);
            }
            self.fire_timers();
            self.dispatch_waiting();
            self.rearm_starved();
            if !self.stopping && self.stop.load(Ordering::Acquire) {
                self.begin_stop();
                drain_deadline = Some(self.now + DRAIN_MS);
            }
            if self.stopping {
                if self.conns.is_empty() && self.listeners.iter().all(|l| !l.armed) {
                    return Ok(());
                }
                if drain_deadline.is_some_and(|d| self.now >= d) {
                    tracing::warn!(
                        worker = self.id,
                        connections = self.conns.len(),
                        "ops still pending at stop; leaking the buffer memory they may touch"
                    );
                    self.ring.leak_buffers();
                    return Ok(());
                }
            } else {
                self.arm_listeners();
            }
            self.stats
                .publish(self.conns.len(), self.ring.bufs().in_use());
        }
    }

    fn tick(&mut self) {
        self.now_us = clock::now_us();
        self.now = self.now_us / 1000;
    }

    /// Gives queued clients any backend room that opened (here or on another worker).
    fn dispatch_waiting(&mut self) {
        for pool in 0..self.queues.pools() {
            if self.queues.len(pool) > 0 {
                self.dispatch_queue(pool);
            }
        }
    }

    fn wait_time(&self) -> Duration {
        let mut until = self.now + MAX_WAIT.as_millis() as u64;
        if let Some(t) = self.timers.next() {
            until = until.min(t);
        }
        if !self.stopping {
            for l in self.listeners.iter().filter(|l| !l.armed) {
                until = until.min(l.retry_at.max(self.now));
            }
        }
        Duration::from_millis(until.saturating_sub(self.now))
    }

    fn handle(&mut self, c: Completion) {
        let Some((op, index, gen)) = token::decode(c.user_data) else {
            tracing::error!(user_data = c.user_data, "completion we never submitted");
            return;
        };
        match op {
            Op::Accept => self.on_accept(index as usize, c),
            Op::Wake => {
                if c.result < 0 {
                    tracing::error!(worker = self.id, error = %std::io::Error::from_raw_os_error(-c.result), "wake-up read failed; relying on the wait timeout");
                } else if !self.stopping && !self.stop.load(Ordering::Acquire) {
                    self.ring.arm_waker(token::encode(Op::Wake, 0, 0));
                }
            }
            Op::Cancel => {}
            _ => {
                let key = index as usize;
                let live = self.conns.get(key).is_some_and(|conn| conn.gen == gen);
                if !live {
                    // A late completion for a slot that was freed: the op is over, but a
                    // buffer it filled must go back to the ring.
                    if let Some(bid) = c.buffer() {
                        self.ring.bufs_mut().taken(bid);
                        self.ring.bufs_mut().recycle(bid);
                    }
                    return;
                }
                if !c.more() {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.ops = conn.ops.saturating_sub(1);
                    }
                }
                match op {
                    Op::Connect => self.on_connect(key, c.result),
                    Op::Recv(side) => self.on_recv(key, side, c),
                    Op::Send(side) => self.on_send(key, side, c.result),
                    Op::Shutdown(side) => self.on_shutdown(key, side),
                    Op::Accept | Op::Wake | Op::Cancel => {}
                }
                self.free_if_done(key);
            }
        }
    }

    fn arm_listeners(&mut self) {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if !l.armed && self.now >= l.retry_at {
                self.ring
                    .accept_multi(l.fd.as_raw_fd(), token::encode(Op::Accept, i as u32, 0));
                l.armed = true;
            }
        }
    }

    fn on_accept(&mut self, li: usize, c: Completion) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if !c.more() {
            l.armed = false;
        }
        if c.result < 0 {
            let err = std::io::Error::from_raw_os_error(-c.result);
            if c.result != -libc::ECANCELED {
                tracing::warn!(worker = self.id, error = %err, "accept failed; retrying shortly");
                l.retry_at = self.now + ACCEPT_RETRY_MS;
            }
            return;
        }
        let pool = l.pool;
        let fd = super::uring::adopt_fd(c.result);
        if self.stopping {
            return;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.start_client(fd, pool);
    }

    /// Next generation for slab slot `key` (kept across reuse of the slot).
    pub fn next_gen(&mut self, key: usize) -> u32 {
        if self.gens.len() <= key {
            self.gens.resize(key + 1, 0);
        }
        self.gens[key] = (self.gens[key] + 1) & token::GEN_MASK;
        self.gens[key]
    }

    fn fire_timers(&mut self) {
        while let Some(d) = self.timers.pop_due(self.now) {
            let key = d.index as usize;
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            if conn.gen != d.gen || conn.deadline != d.at_ms {
                continue;
            }
            match conn.state {
                State::Connecting => self.connect_timed_out(key),
                State::Queued => self.queue_timed_out(key),
                State::Relaying => self.relaying_deadline(key),
                _ => {}
            }
            self.free_if_done(key);
        }
        let conns = &self.conns;
        self.timers.compact_if_needed(conns.len(), |index, gen| {
            conns.get(index as usize).is_some_and(|c| c.gen == gen)
        });
    }

    /// Idle timeout and max connection age of a relaying stream; re-arms its timer otherwise.
    fn relaying_deadline(&mut self, key: usize) {
        let now = self.now;
        let conn = &self.conns[key];
        let idle_due = conn.last_active + conn.idle_timeout_ms;
        if now >= idle_due {
            tracing::debug!(worker = self.id, key, "idle timeout");
            self.stats.idle_timeouts.fetch_add(1, Ordering::Relaxed);
            self.close(key, false);
            return;
        }
        let mut next = idle_due;
        if conn.age_soft > 0 {
            let quiet_at = conn.last_active + AGE_QUIET_MS;
            if now >= conn.age_soft && (now >= conn.age_hard || now >= quiet_at) {
                tracing::debug!(worker = self.id, key, "max connection age");
                self.stats.age_closes.fetch_add(1, Ordering::Relaxed);
                self.close(key, false);
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

    /// Makes `at` the connection's one live deadline.
    pub(super) fn set_deadline(&mut self, key: usize, at: u64) {
        let conn = &mut self.conns[key];
        conn.deadline = at;
        self.timers.push(at, key as u32, conn.gen);
    }

    /// Sets the max-connection-age deadlines of a stream that just started relaying.
    pub(super) fn start_age_limit(&mut self, key: usize, pool: usize) {
        let table = self.table.load();
        let Some(p) = table.pool(pool) else { return };
        let Some(age) = p.max_connection_age() else {
            return;
        };
        let jitter = p.max_connection_age_jitter().as_millis() as u64;
        let age = age.as_millis() as u64;
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

    fn rearm_starved(&mut self) {
        if self.starved.is_empty() || self.ring.bufs().available() == 0 {
            return;
        }
        // Oldest first, and no more sides than there are buffers: re-arming them all would
        // cost every other one a failed recv per recycled buffer.
        let mut budget = self.ring.bufs().available() as usize;
        let starved = std::mem::take(&mut self.starved);
        for (key, gen, side) in starved {
            let live = self.conns.get(key).is_some_and(|c| c.gen == gen);
            if !live {
                continue;
            }
            if budget == 0 {
                self.starved.push((key, gen, side));
                continue;
            }
            budget -= 1;
            self.conns[key].half(side).recv_starved = false;
            self.maybe_arm_recv(key, side);
        }
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        for l in &self.listeners {
            if l.armed {
                self.ring
                    .cancel_fd(l.fd.as_raw_fd(), token::encode(Op::Cancel, 0, 0));
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, false);
            self.free_if_done(key);
        }
    }
}
