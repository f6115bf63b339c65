//! Getting a client to a backend: pick, connect (with a deadline), and on failure retry another
//! backend up to the pool's `retries`, so the client sees nothing of a failed attempt. When
//! every backend is full the client waits in the pool's queue (see `queue`), watched for a
//! hang-up so that a client that left never reaches a GPU.
//!
//! The backend's active count is taken at pick time (the guard) and released when the attempt
//! fails or the connection ends. Must never leave a guard behind on a failed attempt.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use socket2::SockRef;

use crate::balance::{CloseReason, ConnectFailure, NoPick, Pick, PickRequest};

use super::conn::{Conn, Phase};
use super::socket;
use super::token::{self, Op, Side};
use super::worker::Worker;

/// How soon a client that found no descriptor for its backend socket tries again.
const SOCKET_RETRY_MS: u64 = 100;

impl Worker {
    /// A client was accepted on worker listener `listener` of `pool`: read its first bytes
    /// first if the listener routes by them (see `peek`), else pick a backend and start
    /// connecting, or queue the client if every backend is full. (The client socket inherited
    /// TCP_NODELAY and SO_KEEPALIVE from the listener.)
    pub(super) fn start_client(&mut self, client: OwnedFd, pool: usize, listener: u16) {
        let routes = self
            .listeners
            .get(usize::from(listener))
            .and_then(|l| self.policy.listener_routes.get(l.index))
            .filter(|r| r.needs_peek())
            .cloned();
        let key = self.conns.vacant_key();
        let gen = self.next_gen(key);
        let mut conn = Conn::new(gen, client, pool, listener, self.now);
        conn.seq = self.next_seq();
        let wants_addr = routes.is_some()
            || self.policy.access_log
            || self
                .policy
                .pools
                .get(pool)
                .is_some_and(|p| p.needs_client_addr);
        if wants_addr {
            let fd = &conn.halves[Side::Client.idx()].fd;
            conn.client_addr = fd
                .as_ref()
                .and_then(|fd| SockRef::from(fd).peer_addr().ok())
                .and_then(|a| a.as_socket())
                .map(Box::new);
        }
        self.conns.insert(conn);
        match routes {
            Some(routes) => self.start_peeking(key, routes),
            None => self.dispatch(key, None),
        }
    }

    /// Picks a backend of the client's pool (`conn.pool`) and starts connecting; or queues
    /// the client if every backend is full; or closes it. `session` places the client for
    /// `hash` instead of its address (a session key found by the peek).
    pub(super) fn dispatch(&mut self, key: usize, session: Option<u64>) {
        let pool = self.conns[key].pool;
        let Some(policy) = self.policy.pools.get(pool).copied() else {
            tracing::error!(
                pool,
                "a listener or rule points at a pool the policy does not have"
            );
            self.close(key, CloseReason::Error);
            self.free_if_done(key);
            return;
        };
        let conn = &mut self.conns[key];
        conn.phase = Phase::Connecting;
        conn.idle_timeout_ms = policy.idle_timeout_ms;
        conn.half_close_timeout_ms = policy.half_close_timeout_ms;
        conn.connect_timeout_ms = policy.connect_timeout_ms;
        conn.first_byte_timeout_ms =
            u32::try_from(policy.first_byte_timeout_ms).unwrap_or(u32::MAX);
        let client = conn.client_addr.as_deref().copied();
        let request = PickRequest::new(pool, self.now)
            .for_client(client)
            .for_session(session);
        match self.table.load().pick(&request) {
            Ok(pick) => self.connect_to(key, pick),
            Err(why)
                if (why == NoPick::AllFull || policy.queue_when_all_down)
                    && self.queues_shared.try_join(pool, policy.queue_size) =>
            {
                let conn = &mut self.conns[key];
                conn.phase = Phase::Queued;
                conn.started_us = self.now_us;
                let (fd, gen) = (conn.halves[Side::Client.idx()].raw(), conn.gen);
                conn.ops += 1;
                if let Some(fd) = fd {
                    self.ring
                        .poll_hangup(fd, token::encode(Op::Poll, key as u32, gen));
                }
                self.queues.push(pool, key, gen);
                self.set_deadline(key, self.now + policy.queue_timeout_ms);
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                let (counter, reason) = match why {
                    NoPick::AllFull => (&self.stats.queue_full, CloseReason::QueueFull),
                    NoPick::Unavailable => (&self.stats.no_backend, CloseReason::NoBackend),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    conn = %self.conn_id(&self.conns[key]),
                    pool,
                    ?why,
                    "no backend can take the client; closing it"
                );
                self.close(key, reason);
                self.free_if_done(key);
            }
        }
    }

    /// Dispatches waiting clients of `pool` while its backends have room.
    pub(super) fn dispatch_queue(&mut self, pool: usize) {
        while let Some((key, gen)) = self.queues.front(pool) {
            let waiting = self
                .conns
                .get(key)
                .is_some_and(|c| c.gen == gen && c.phase == Phase::Queued);
            if !waiting {
                self.queues.pop(pool);
                continue;
            }
            let client = self.conns[key].client_addr.as_deref().copied();
            let request = PickRequest::new(pool, self.now).for_client(client);
            let Ok(pick) = self.table.load().pick(&request) else {
                return;
            };
            self.queues.pop(pool);
            self.queues_shared.leave(pool);
            let conn = &mut self.conns[key];
            self.queues_shared
                .record_wait(pool, self.now_us.saturating_sub(conn.started_us));
            conn.phase = Phase::Connecting;
            // The hang-up watch ends with ECANCELED (ignored outside the queue).
            let target = token::encode(Op::Poll, key as u32, gen);
            self.ring.cancel(target, token::encode(Op::Cancel, 0, 0));
            self.connect_to(key, pick);
        }
    }

    /// The hang-up watch of a queued client completed: unless it was cancelled (dispatched, or
    /// closing), the client is gone; it leaves the queue at once.
    pub(super) fn on_queued_hangup(&mut self, key: usize, result: i32) {
        if self.conns[key].phase != Phase::Queued || result < 0 {
            return;
        }
        let pool = self.conns[key].pool;
        self.queues_shared.leave(pool);
        self.stats.queue_abandoned.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(conn = %self.conn_id(&self.conns[key]), pool, "a queued client hung up");
        // The stale entry in the local queue is skipped when reached.
        self.close(key, CloseReason::QueueAbandoned);
    }

    /// A queued client waited `queue_timeout`: close it.
    pub(super) fn queue_timed_out(&mut self, key: usize) {
        let pool = self.conns[key].pool;
        self.queues_shared.leave(pool);
        self.stats.queue_timeouts.fetch_add(1, Ordering::Relaxed);
        self.close(key, CloseReason::QueueTimeout);
    }

    /// Opens a backend socket and submits the connect, with its deadline on the timer heap.
    pub(super) fn connect_to(&mut self, key: usize, pick: Pick) {
        let timeout_ms = self.conns[key].connect_timeout_ms;
        let sock = match socket::backend_socket(pick.addr) {
            Ok(s) => s,
            Err(e) => {
                // A local failure: no other backend would do better. Out of descriptors is
                // usually brief (streams end, the accept backoff holds new clients): the
                // client waits and is dispatched again, up to its pool's connect timeout
                // from when it was accepted; anything else closes it.
                let conn = &self.conns[key];
                let fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                let waits = fds && self.now < conn.born + conn.connect_timeout_ms;
                if let Some(more) = self.socket_repeats.hit(self.now) {
                    tracing::warn!(
                        error = %e,
                        more_since_last_line = more,
                        waits,
                        "cannot open a backend socket (repeats counted)"
                    );
                }
                if waits {
                    drop(pick);
                    self.stats.socket_waits.fetch_add(1, Ordering::Relaxed);
                    self.set_deadline(key, self.now + SOCKET_RETRY_MS);
                    return;
                }
                self.close(key, CloseReason::Error);
                // Reached from accept too, where no completion would free the slot later.
                self.free_if_done(key);
                return;
            }
        };
        let gen = self.conns[key].gen;
        let deadline = self.now + timeout_ms;
        self.ring.connect(
            sock.as_raw_fd(),
            pick.addr,
            token::encode(Op::Connect, key as u32, gen),
        );
        self.set_deadline(key, deadline);
        let conn = &mut self.conns[key];
        conn.ops += 1;
        conn.halves[Side::Backend.idx()].fd = Some(sock);
        conn.backend = pick.backend;
        conn.guard = Some(pick.guard);
        conn.connect_timed_out = false;
        conn.started_us = self.now_us;
    }

    pub(super) fn on_connect(&mut self, key: usize, result: i32) {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Connecting {
            return;
        }
        if result == 0 {
            if let Some(g) = &conn.guard {
                g.connect_succeeded(self.now);
                g.observe_connect(
                    Duration::from_micros(self.now_us.saturating_sub(conn.started_us)),
                    self.now,
                );
            }
            conn.phase = Phase::Relaying;
            conn.last_active = self.now;
            if !self.send_proxy_header(key) {
                self.close(key, CloseReason::Error);
                return;
            }
            self.start_relaying_deadlines(key);
            self.drive(key);
            return;
        }
        let (reason, kind) = if conn.connect_timed_out {
            ("timeout".to_string(), ConnectFailure::Timeout)
        } else {
            (
                std::io::Error::from_raw_os_error(-result).to_string(),
                ConnectFailure::from_errno(-result),
            )
        };
        if let Some(g) = &conn.guard {
            g.record_connect_failure(kind);
        }
        // A reset reported by the connect means the backend accepted and at once reset (the
        // kernel saw it before the connect's completion was checked): an early close, which
        // `passive_early_close` judges, not a refused connect. The client still gets another
        // backend, having seen nothing.
        let reset = result == -libc::ECONNRESET && !conn.connect_timed_out;
        if reset {
            if let Some(g) = &conn.guard {
                g.early_close(self.now);
            }
        }
        self.connect_failed(key, &reason, !reset);
    }

    /// The connect deadline passed: cancel the connect; its completion runs the failure path.
    /// A client waiting for a descriptor (no backend socket yet) is dispatched again instead.
    pub(super) fn connect_timed_out(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.halves[Side::Backend.idx()].fd.is_none() && conn.ops == 0 {
            self.dispatch(key, None);
            return;
        }
        conn.connect_timed_out = true;
        let target = token::encode(Op::Connect, key as u32, conn.gen);
        self.ring.cancel(target, token::encode(Op::Cancel, 0, 0));
    }

    /// The attempt failed: release it, count it in passive health if `passive`, and retry
    /// another backend while the pool's retries allow.
    fn connect_failed(&mut self, key: usize, reason: &str, passive: bool) {
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        let conn = &mut self.conns[key];
        let addr = conn.guard.as_ref().map(|g| g.addr());
        if let Some(guard) = conn.guard.take() {
            if passive {
                // Passive health logs the transition (once, with the pool) if this marks it.
                guard.connect_failed(self.now);
            }
            // Dropping the guard releases this attempt's count.
        }
        tracing::debug!(conn = %self.conn_id(&self.conns[key]), backend = ?addr, reason, "connect failed");
        let conn = &mut self.conns[key];
        // The connect was the only op on the backend socket and it has completed.
        conn.halves[Side::Backend.idx()].fd = None;
        conn.tried.extend(addr);
        let pool = conn.pool;
        let attempts = conn.tried.len() as u32;
        let retries = self.policy.pools.get(pool).map_or(0, |p| p.retries);
        let next = if attempts <= retries {
            self.pick_another(key)
        } else {
            None
        };
        self.slot_freed(pool);
        match next {
            Some(pick) => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.connect_to(key, pick);
            }
            None => {
                tracing::info!(
                    conn = %self.conn_id(&self.conns[key]),
                    backend = ?addr,
                    reason,
                    attempts,
                    "no backend reachable; closing client"
                );
                self.close(key, CloseReason::ConnectFailed);
            }
        }
    }

    /// Picks a backend for the client of `key` other than those it already tried.
    pub(super) fn pick_another(&mut self, key: usize) -> Option<Pick> {
        let conn = &self.conns[key];
        let client = conn.client_addr.as_deref().copied();
        // By address: a reload may have moved the backends since the first attempt.
        let table = self.table.load();
        let exclude: Vec<usize> = table
            .pool(conn.pool)
            .map(|p| {
                (0..p.len())
                    .filter(|&i| p.backend_addr(i).is_some_and(|a| conn.tried.contains(&a)))
                    .collect()
            })
            .unwrap_or_default();
        let request = PickRequest::new(conn.pool, self.now)
            .excluding(&exclude)
            .for_client(client);
        table.pick(&request).ok()
    }

    /// A backend count of `pool` was released: waiting clients (here or on other workers)
    /// may now fit.
    pub(super) fn slot_freed(&mut self, pool: usize) {
        let waiting = self.queues_shared.waiting(pool) as usize;
        if waiting == 0 {
            return;
        }
        // Local waiters are dispatched at the end of this loop turn; others need a wake-up.
        if self.queues.len(pool) < waiting {
            self.queues_shared.wake_others(self.id);
        }
    }
}
