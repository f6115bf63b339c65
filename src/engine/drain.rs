//! Graceful stop: stop accepting, let live streams finish, then reset what is left.
//!
//! On a drain request each worker cancels its multishot accepts; once a listener's accept is
//! off it accepts, without waiting, whatever already sits in that socket's listen backlog
//! (those clients completed their handshake: closing the socket would reset them), then
//! closes the socket, so the port refuses new clients. Clients accepted that way, parked ones
//! and queued ones are served like any other. Live streams go on until they end or the
//! drain's deadline passes; then the worker stops as on [`Control::stop`] (every stream left is
//! reset, reason `shutdown`). A drain after a hand-over is the same: a socket the new process
//! took is shared with it, and closing our copy leaves it open for the new process. Must never close a listening socket with an accept still in
//! flight on it, nor reset a stream before the deadline.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use socket2::SockRef;

use crate::balance::CloseReason;

use super::conn::Phase;
use super::worker::{Accept, Worker};

/// What the server asks of its workers, read by each at every loop turn.
#[derive(Default)]
pub(super) struct Control {
    /// Stop now: reset every stream and exit.
    pub stop: AtomicBool,
    /// Drain: 0 = no; otherwise the shutdown timeout in milliseconds, plus one.
    pub drain: AtomicU64,
    /// (listener index, worker) of the sockets a hand-over gave to a new process: set before
    /// the drain it comes with, read once by each worker when that drain starts.
    pub handed_over: parking_lot::Mutex<Vec<(usize, usize)>>,
}

impl Control {
    pub fn request_drain(&self, timeout_ms: u64) {
        let v = timeout_ms.saturating_add(1);
        let _ = self
            .drain
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Stopping, or draining: nothing left to hand over.
    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.drain_timeout_ms().is_some()
    }

    /// The drain's timeout if one was asked for.
    pub fn drain_timeout_ms(&self) -> Option<u64> {
        match self.drain.load(Ordering::Acquire) {
            0 => None,
            v => Some(v - 1),
        }
    }
}

impl Worker {
    /// Starts draining if the server asked for it (once).
    pub(super) fn check_drain(&mut self) {
        if self.stopping || self.drain_until.is_some() {
            return;
        }
        let Some(timeout) = self.control.drain_timeout_ms() else {
            return;
        };
        if timeout == 0 {
            self.begin_stop();
            return;
        }
        self.drain_until = Some(self.now + timeout);
        self.mark_handed_over();
        for l in self.listeners.iter_mut() {
            l.closing = true;
            l.cancel_accept(&mut self.ring);
        }
    }

    /// Closes every listener being closed whose accept is off, after taking its backlog.
    pub(super) fn close_listeners(&mut self) {
        if self.stopping {
            return;
        }
        for li in 0..self.listeners.len() {
            let l = &mut self.listeners[li];
            if !l.closing || l.accept != Accept::Off {
                continue;
            }
            let Some(fd) = l.fd.take() else { continue };
            let (index, handed_over) = (l.index, l.handed_over);
            // A socket handed over is shared with the new process, which accepts on it too;
            // its backlog is taken all the same. The kernel wakes one accept waiter per client
            // (io_uring's accept polls are exclusive): a client whose wake-up went to our
            // accept just before it was cancelled would wait in the queue, unseen by the new
            // process, until the next client woke it. Closing only drops our copy.
            let taken = self.take_backlog(&fd, li);
            drop(fd);
            tracing::info!(
                worker = self.id,
                listener = index,
                from_backlog = taken,
                handed_over,
                "stopped accepting"
            );
        }
    }

    /// One turn of a drain: at the deadline, stops.
    pub(super) fn drain_turn(&mut self) {
        let Some(until) = self.drain_until else {
            return;
        };
        if self.stopping {
            return;
        }
        if self.now >= until {
            tracing::info!(
                worker = self.id,
                streams = self.conns.len(),
                "shutdown timeout passed; resetting the streams left"
            );
            self.begin_stop();
        }
    }

    /// Resets the streams whose backend a reload removed and whose pool's `drain_timeout` is
    /// over (checked every few seconds, not per byte).
    pub(super) fn cut_removed(&mut self) {
        let now = self.now;
        let cut: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Relaying)
            .filter(|(_, c)| c.guard.as_ref().is_some_and(|g| g.drain_expired(now)))
            .map(|(key, _)| key)
            .collect();
        for key in cut {
            self.close(key, CloseReason::Drained);
            self.free_if_done(key);
        }
    }

    /// True once a draining worker has nothing left: every listener closed, no connection.
    pub(super) fn drained(&self) -> bool {
        self.drain_until.is_some()
            && self.conns.is_empty()
            && self.parked.is_empty()
            && self.listeners.iter().all(|l| l.fd.is_none())
    }

    /// Accepts every connection waiting in `fd`'s listen backlog, without blocking.
    fn take_backlog(&mut self, fd: &OwnedFd, li: usize) -> usize {
        let sock = SockRef::from(fd);
        if let Err(e) = sock.set_nonblocking(true) {
            tracing::warn!(error = %e, "cannot make the listener non-blocking; not taking its backlog");
            return 0;
        }
        let mut taken = 0;
        loop {
            match sock.accept() {
                Ok((client, _)) => {
                    taken += 1;
                    self.accepted(OwnedFd::from(client), li);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return taken,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed while taking the backlog");
                    return taken;
                }
            }
        }
    }
}
