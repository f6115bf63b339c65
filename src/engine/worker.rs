//! One worker thread: its ring, its listening sockets and its slab of connections, driven by
//! a completion loop with one submit-and-wait per turn.
//!
//! The per-connection path takes no lock: the shared backend table is read lock-free, the
//! admission counts are atomics, and the slab, ring and timers belong to this thread alone. A
//! worker must never block anywhere but in `submit_and_wait`, and must stop (with the reason)
//! as soon as it cannot trust its ring.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::balance::{CloseReason, TableCache};

use super::admit::Admission;
use super::conn::{Conn, Recv};
use super::drain::Control;
use super::driver::{Completion, DriverError, Ring};
use super::mailbox::{Mail, Mailbox};
use super::policy::Policy;
use super::queue::{LocalQueues, QueueShared};
use super::ratelimit::Repeats;
use super::stats::WorkerStats;
use super::time::Clock;
use super::timer::Timers;
use super::token::{self, Op, Side};
use super::uring::UringError;
use super::EngineError;

/// Longest wait in the kernel without a reason to wake: a bound on how stale `now` can get
/// for timers and how late a missed wake-up could be noticed.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Pause before re-arming accept after it failed (EMFILE, ENFILE, ENOMEM): lets closes free
/// descriptors instead of spinning on a failing accept.
pub(super) const ACCEPT_RETRY_MS: u64 = 100;
/// How long a stopping worker waits for cancelled ops to complete before giving up.
const DRAIN_MS: u64 = 2000;
/// Clients a worker holds, accepted but not admitted, when a connection limit was reached on
/// another worker before this one stopped accepting; past this they are reset.
pub(super) const MAX_PARKED: usize = 256;
/// Distinct sockets waiting for a receive buffer at the end of a turn that make the ring grow.
const STARVED_TO_GROW: usize = 8;
/// At most one line per this long for a repeated warning (failed accepts, sockets).
const REPEAT_LOG_MS: u64 = 10_000;
/// How often buffer memory that recent demand did not need is handed back to the system.
const TRIM_MS: u64 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Accept {
    Off,
    Armed,
    /// A cancel was requested (a connection limit was reached, or stopping).
    Cancelling,
}

pub(super) struct WorkerListener {
    /// None once closed (draining).
    pub fd: Option<OwnedFd>,
    pub pool: usize,
    /// Index of the listener in the config (admission counts are per config listener).
    pub index: usize,
    pub accept: Accept,
    /// Accept failed: re-arm not before this time.
    pub retry_at: u64,
    /// Being closed (drain, or a reload removed it): never re-armed; closed once its accept
    /// is off and its backlog taken.
    pub closing: bool,
    /// A new process took this socket (hand-over): closing it drops only our copy (logged).
    pub handed_over: bool,
}

impl WorkerListener {
    /// Cancels its multishot accept if one is armed; the accept's last completion turns it
    /// `Off`. (Pausing at a limit, draining, a reload removing it, stopping.)
    pub fn cancel_accept(&mut self, ring: &mut Ring) {
        if self.accept != Accept::Armed {
            return;
        }
        if let Some(fd) = &self.fd {
            ring.cancel_fd(fd.as_raw_fd(), token::encode(Op::Cancel, 0, 0));
        }
        self.accept = Accept::Cancelling;
    }
}

/// Everything a worker is started with.
pub(super) struct WorkerParts {
    pub id: usize,
    pub ring: Ring,
    pub listeners: Vec<WorkerListener>,
    pub table: TableCache,
    pub policy: Arc<ArcSwap<Policy>>,
    pub queues: Arc<QueueShared>,
    pub admission: Arc<Admission>,
    pub control: Arc<Control>,
    pub mailbox: Arc<Mailbox>,
    pub stats: Arc<WorkerStats>,
    pub clock: Clock,
    /// Told once this worker's accepts are in the kernel (its first loop turn).
    pub armed: Arc<super::handover::Armed>,
    /// Test hook: a fault (see `engine::tests`) the worker meets at its next loop turn.
    #[cfg(test)]
    pub fault: Arc<std::sync::atomic::AtomicU8>,
}

pub(super) struct Worker {
    pub(super) id: usize,
    pub(super) ring: Ring,
    pub(super) conns: Slab<Conn>,
    pub(super) listeners: Vec<WorkerListener>,
    /// This worker's view of the shared table (no shared write per load).
    pub(super) table: TableCache,
    pub(super) policy: Arc<Policy>,
    /// Where a reload publishes the next policy.
    policy_src: Arc<ArcSwap<Policy>>,
    pub(super) timers: Timers,
    pub(super) clock: Clock,
    /// Loop-turn time in milliseconds (timers) and microseconds (latency samples).
    pub(super) now: u64,
    pub(super) now_us: u64,
    pub(super) queues: LocalQueues,
    pub(super) queues_shared: Arc<QueueShared>,
    pub(super) admission: Arc<Admission>,
    /// Per-slot generation counters, kept past a slot's reuse so late completions are dropped.
    gens: Vec<u32>,
    /// Sides whose recv ended for lack of buffers, to re-arm once buffers are back.
    pub(super) starved: Vec<(usize, u32, Side)>,
    /// Bytes peeking connections hold, and those waiting for peek memory to start (see `peek`).
    pub(super) peek_bytes: u64,
    pub(super) peek_waiting: std::collections::VecDeque<(usize, u32)>,
    pub(super) max_unsent: u32,
    /// Accepted past a connection limit (by a race with another worker): admitted first when
    /// room opens, oldest first. (Worker listener index with each.)
    pub(super) parked: VecDeque<(OwnedFd, u16)>,
    pub(super) control: Arc<Control>,
    mailbox: Arc<Mailbox>,
    /// Draining (stop accepting, let streams end) until this time, then stop.
    pub(super) drain_until: Option<u64>,
    pub(super) stopping: bool,
    pub(super) stats: Arc<WorkerStats>,
    next_trim: u64,
    /// `balance::reset_epoch()` as last seen: a change means some backend's streams are to be
    /// reset (`on_down = "reset"`).
    reset_epoch: u64,
    /// Sequence number of the next client connection (connection ids in logs).
    seq: u64,
    pub(super) accept_repeats: Repeats,
    pub(super) socket_repeats: Repeats,
    /// Until the first loop turn is done: then told, and dropped.
    armed: Option<Arc<super::handover::Armed>>,
    #[cfg(test)]
    fault: Arc<std::sync::atomic::AtomicU8>,
}

impl Worker {
    pub(super) fn new(p: WorkerParts) -> Worker {
        let now_us = p.clock.now_us();
        Worker {
            id: p.id,
            ring: p.ring,
            conns: Slab::new(),
            listeners: p.listeners,
            table: p.table,
            max_unsent: p.policy.load().max_unsent,
            policy: p.policy.load_full(),
            policy_src: p.policy,
            timers: Timers::default(),
            clock: p.clock,
            now: now_us / 1000,
            now_us,
            queues: LocalQueues::default(),
            queues_shared: p.queues,
            admission: p.admission,
            gens: Vec::new(),
            starved: Vec::new(),
            peek_bytes: 0,
            peek_waiting: std::collections::VecDeque::new(),
            parked: VecDeque::new(),
            control: p.control,
            mailbox: p.mailbox,
            drain_until: None,
            stopping: false,
            stats: p.stats,
            next_trim: now_us / 1000 + TRIM_MS,
            reset_epoch: crate::balance::reset_epoch(),
            seq: 0,
            accept_repeats: Repeats::new(REPEAT_LOG_MS),
            socket_repeats: Repeats::new(REPEAT_LOG_MS),
            armed: Some(p.armed),
            #[cfg(test)]
            fault: p.fault,
        }
    }

    pub(super) fn run(mut self) -> Result<(), EngineError> {
        self.ring.arm_waker(token::encode(Op::Wake, 0, 0));
        self.arm_listeners();
        let mut completions: Vec<Completion> = Vec::with_capacity(1024);
        let mut drain_deadline = None;
        loop {
            let wait = self.wait_time();
            if let Err(e) = self.ring.submit_and_wait(wait, &mut completions) {
                return Err(self.fail(e));
            }
            self.tick();
            self.stats.loop_turns.fetch_add(1, Ordering::Relaxed);
            if let Some(armed) = self.armed.take() {
                armed.arrive(); // the accepts armed before the first wait are submitted
            }
            self.adopt_policy();
            self.read_mail();
            for c in completions.drain(..) {
                self.handle(c);
            }
            self.fire_timers();
            self.dispatch_waiting();
            self.rearm_starved();
            if let Some(e) = self.ring.failure() {
                return Err(self.fail(UringError::Stuck(e)));
            }
            #[cfg(test)]
            match self.fault.load(Ordering::Acquire) {
                super::tests::FAULT_PANIC => panic!("fault injected into worker {}", self.id),
                super::tests::FAULT_RING => return Err(self.fail(UringError::CompletionsLost)),
                _ => {}
            }
            if !self.stopping && self.control.stop.load(Ordering::Acquire) {
                self.begin_stop();
            }
            self.check_drain();
            self.close_listeners();
            self.drain_turn();
            if self.stopping && drain_deadline.is_none() {
                drain_deadline = Some(self.now + DRAIN_MS);
            }
            if self.drained() {
                return Ok(());
            }
            if self.stopping {
                let accepting = self.listeners.iter().any(|l| l.accept != Accept::Off);
                if self.conns.is_empty() && !accepting {
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
                self.admit_parked();
                if self.drain_until.is_none() {
                    self.pause_full_listeners();
                    self.arm_listeners();
                }
            }
            if self.reset_epoch != crate::balance::reset_epoch() {
                self.reset_epoch = crate::balance::reset_epoch();
                self.reset_requested_streams();
            }
            if self.now >= self.next_trim {
                self.next_trim = self.now + TRIM_MS;
                self.log_progress();
                self.cut_removed();
                self.revive_stuck();
                self.ring.trim();
            }
            let bufs = self.ring.bufs();
            self.stats.publish(
                self.conns.len(),
                bufs.in_use(),
                bufs.warm(),
                self.ring.spill().in_use(),
                self.peek_bytes,
            );
        }
    }

    /// The ring cannot be trusted: ops may be in flight that will never be accounted for, so
    /// their memory is leaked rather than freed, and the worker stops with the reason.
    fn fail(&mut self, e: impl Into<DriverError>) -> EngineError {
        let e = e.into();
        tracing::error!(worker = self.id, error = %e, "worker stops");
        self.ring.leak_buffers();
        e.into()
    }

    fn tick(&mut self) {
        self.now_us = self.clock.now_us();
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
        if let Some(t) = self.drain_until {
            until = until.min(t);
        }
        if !self.stopping {
            for l in self.listeners.iter().filter(|l| l.accept == Accept::Off) {
                if l.retry_at > self.now {
                    until = until.min(l.retry_at);
                }
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
                } else if !self.stopping && !self.control.stop.load(Ordering::Acquire) {
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
                    Op::Poll => self.on_queued_hangup(key, c.result),
                    Op::Watch(side) => self.on_watch(key, side, c.result),
                    Op::Accept | Op::Wake | Op::Cancel => {}
                }
                self.resume_replay(key);
                self.free_if_done(key);
            }
        }
    }

    /// The pool a listener's clients go to under the current policy (a reload may change it).
    pub(super) fn listener_pool(&self, l: &WorkerListener) -> usize {
        self.policy
            .listener_pools
            .get(l.index)
            .copied()
            .unwrap_or(l.pool)
    }

    /// Takes a new policy (a reload) if there is one: new connections follow it; live ones
    /// keep the timeouts they started with, and pool indexes stay valid (a reload keeps
    /// every pool's index).
    fn adopt_policy(&mut self) {
        let current = self.policy_src.load();
        if !Arc::ptr_eq(&current, &self.policy) {
            self.policy = Arc::clone(&current);
        }
    }

    /// Listeners a reload added or removed.
    fn read_mail(&mut self) {
        for mail in self.mailbox.take(self.id) {
            match mail {
                Mail::Listen(l) => {
                    if self.stopping || self.drain_until.is_some() {
                        continue; // dropped: closes the socket; nothing was accepted on it
                    }
                    self.listeners.push(l);
                }
                Mail::Lend(reply) => self.lend(&reply),
                Mail::Close(index) => {
                    for l in self.listeners.iter_mut().filter(|l| l.index == index) {
                        l.closing = true;
                        l.cancel_accept(&mut self.ring);
                    }
                }
            }
        }
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Next generation for slab slot `key` (kept across reuse of the slot).
    pub(super) fn next_gen(&mut self, key: usize) -> u32 {
        if self.gens.len() <= key {
            self.gens.resize(key + 1, 0);
        }
        self.gens[key] = (self.gens[key] + 1) & token::GEN_MASK;
        self.gens[key]
    }

    fn rearm_starved(&mut self) {
        // Many sockets waiting at once: the ring is too small for this worker's load. (One
        // multishot recv that drained a fast socket into every buffer is not a reason: the
        // buffers come back within a turn, and a bigger ring would be drained the same way.)
        if self.starved.len() >= STARVED_TO_GROW {
            self.ring.bufs_mut().grow();
        }
        if self.starved.is_empty() || self.ring.bufs().available() == 0 {
            return;
        }
        // Oldest first, and no more sides than there are buffers: re-arming them all would
        // cost every other one a failed recv per recycled buffer.
        let mut budget = self.ring.bufs().available() as usize;
        let starved = std::mem::take(&mut self.starved);
        for (key, gen, side) in starved {
            let live = self
                .conns
                .get(key)
                .is_some_and(|c| c.gen == gen && c.half_ref(side).recv == Recv::Starved);
            if !live {
                continue;
            }
            if budget == 0 {
                self.starved.push((key, gen, side));
                continue;
            }
            budget -= 1;
            self.conns[key].half(side).recv = Recv::Off;
            self.drive(key);
        }
    }

    pub(super) fn begin_stop(&mut self) {
        self.stopping = true;
        self.parked.clear();
        for l in self.listeners.iter_mut() {
            l.cancel_accept(&mut self.ring);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, CloseReason::Shutdown);
            self.free_if_done(key);
        }
    }
}
