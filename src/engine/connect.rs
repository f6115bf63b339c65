//! Getting a client to a backend: pick, connect (with a deadline), and on failure retry another
//! backend up to the pool's `retries`, so the client sees nothing of a failed attempt.
//!
//! The backend's active count is taken at pick time (the guard) and released when the attempt
//! fails or the connection ends. Must never leave a guard behind on a failed attempt.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use crate::balance::Pick;

use super::conn::{Conn, State};
use super::socket;
use super::token::{self, Op, Side};
use super::worker::Worker;

impl Worker {
    /// A client was accepted on a listener of `pool`: pick a backend and start connecting.
    /// (The client socket inherited TCP_NODELAY and SO_KEEPALIVE from the listener.)
    pub(super) fn start_client(&mut self, client: OwnedFd, pool: usize) {
        let table = self.table.load();
        let Some(pool_table) = table.pool(pool) else {
            tracing::error!(pool, "listener points at a pool the table does not have");
            return;
        };
        let idle_ms = pool_table.idle_timeout().as_millis() as u64;
        let connect_ms = pool_table.connect_timeout().as_millis() as u64;
        let Some(pick) = table.pick(pool, &[]) else {
            self.stats.no_backend.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                pool = pool_table.name(),
                "no backend available; closing client"
            );
            return;
        };
        let key = self.conns.vacant_key();
        let gen = self.next_gen(key);
        let conn = Conn::new(gen, client, pool, self.now, idle_ms, connect_ms);
        let inserted = self.conns.insert(conn);
        debug_assert_eq!(inserted, key);
        self.connect_to(key, pick);
    }

    /// Opens a backend socket and submits the connect, with its deadline on the timer heap.
    fn connect_to(&mut self, key: usize, pick: Pick) {
        let timeout_ms = self.conns[key].connect_timeout_ms;
        let sock = match socket::backend_socket(pick.addr) {
            Ok(s) => s,
            Err(e) => {
                // A local failure (out of descriptors): no other backend would do better.
                tracing::warn!(error = %e, "cannot open a backend socket; closing client");
                self.close(key, false);
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
        self.timers.push(deadline, key as u32, gen);
        let conn = &mut self.conns[key];
        conn.ops += 1;
        conn.halves[Side::Backend.idx()].fd = Some(sock);
        conn.backend = pick.backend;
        conn.guard = Some(pick.guard);
        conn.connect_deadline = deadline;
        conn.connect_timed_out = false;
    }

    pub(super) fn on_connect(&mut self, key: usize, result: i32) {
        let conn = &mut self.conns[key];
        if conn.state != State::Connecting {
            return;
        }
        if result == 0 {
            if let Some(g) = &conn.guard {
                g.connect_succeeded();
            }
            conn.state = State::Relaying;
            conn.last_active = self.now;
            let due = self.now + conn.idle_timeout_ms;
            let gen = conn.gen;
            self.timers.push(due, key as u32, gen);
            self.maybe_arm_recv(key, Side::Client);
            self.maybe_arm_recv(key, Side::Backend);
            return;
        }
        let reason = if conn.connect_timed_out {
            "timeout".to_string()
        } else {
            std::io::Error::from_raw_os_error(-result).to_string()
        };
        self.connect_failed(key, &reason);
    }

    /// The connect deadline passed: cancel the connect; its completion runs the failure path.
    pub(super) fn connect_timed_out(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.connect_timed_out = true;
        let target = token::encode(Op::Connect, key as u32, conn.gen);
        self.ring.cancel(target, token::encode(Op::Cancel, 0, 0));
    }

    fn connect_failed(&mut self, key: usize, reason: &str) {
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        let conn = &mut self.conns[key];
        let addr = conn.guard.as_ref().map(|g| g.addr());
        if let Some(guard) = conn.guard.take() {
            if guard.connect_failed() {
                tracing::warn!(backend = ?addr, reason, "backend marked down");
            }
            // Dropping the guard releases this attempt's count.
        }
        tracing::debug!(backend = ?addr, reason, "connect failed");
        // The connect was the only op on the backend socket and it has completed.
        conn.halves[Side::Backend.idx()].fd = None;
        conn.tried.push(conn.backend);
        let pool = conn.pool;
        let attempts = conn.tried.len() as u32;
        let table = self.table.load();
        let retries = table.pool(pool).map(|p| p.retries()).unwrap_or(0);
        let next = if attempts <= retries {
            table.pick(pool, &self.conns[key].tried)
        } else {
            None
        };
        match next {
            Some(pick) => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.connect_to(key, pick);
            }
            None => {
                tracing::info!(backend = ?addr, reason, attempts, "no backend reachable; closing client");
                self.close(key, false);
            }
        }
    }
}
