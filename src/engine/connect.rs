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

impl Worker {
    /// A client was accepted on worker listener `listener` of `pool`: pick a backend and start
    /// connecting, or queue the client if every backend is full. (The client socket inherited
    /// TCP_NODELAY and SO_KEEPALIVE from the listener.)
    pub(super) fn start_client(&mut self, client: OwnedFd, pool: usize, listener: u16) {
        let Some(policy) = self.policy.pools.get(pool).copied() else {
            tracing::error!(pool, "listener points at a pool the policy does not have");
            self.admission_released(listener as usize);
            return;
        };
        let client_addr = if policy.needs_client_addr || self.policy.access_log {
            SockRef::from(&client)
                .peer_addr()
                .ok()
                .and_then(|a| a.as_socket())
        } else {
            None
        };
        let picked = self
            .table
            .load()
            .pick(&PickRequest::new(pool, self.now).for_client(client_addr));
        let key = self.conns.vacant_key();
        let gen = self.next_gen(key);
        let mut conn = Conn::new(gen, client, pool, listener, self.now);
        conn.seq = self.next_seq();
        conn.idle_timeout_ms = policy.idle_timeout_ms;
        conn.half_close_timeout_ms = policy.half_close_timeout_ms;
        conn.connect_timeout_ms = policy.connect_timeout_ms;
        conn.first_byte_timeout_ms =
            u32::try_from(policy.first_byte_timeout_ms).unwrap_or(u32::MAX);
        conn.client_addr = client_addr.map(Box::new);
        match picked {
            Ok(pick) => {
                self.conns.insert(conn);
                self.connect_to(key, pick);
            }
            Err(why)
                if (why == NoPick::AllFull || policy.queue_when_all_down)
                    && self.queues_shared.try_join(pool, policy.queue_size) =>
            {
                conn.phase = Phase::Queued;
                conn.started_us = self.now_us;
                let fd = conn.halves[Side::Client.idx()].raw();
                conn.ops += 1;
                self.conns.insert(conn);
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
                conn.reason = Some(reason);
                tracing::debug!(
                    conn = %self.conn_id(&conn),
                    pool,
                    ?why,
                    "no backend can take the client; closing it"
                );
                self.record_end(&conn);
                drop(conn);
                self.admission_released(listener as usize);
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
                // A local failure (out of descriptors): no other backend would do better.
                if let Some(more) = self.socket_repeats.hit(self.now) {
                    tracing::warn!(
                        error = %e,
                        more_since_last_line = more,
                        "cannot open a backend socket; closing client (repeats counted)"
                    );
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
    pub(super) fn connect_timed_out(&mut self, key: usize) {
        let conn = &mut self.conns[key];
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
