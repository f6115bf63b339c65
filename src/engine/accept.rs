//! Taking clients in: multishot accepts armed while the connection limits have room and
//! paused (cancelled) when they are reached, so that clients wait in the kernel's listen
//! backlog rather than cost descriptors; clients accepted just past a limit are parked and
//! admitted as streams end. Must never drop an accepted client silently, nor keep accepting
//! past a limit.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::driver::Completion;
use super::socket;
use super::token::{self, Op};
use super::worker::{Accept, Worker, ACCEPT_RETRY_MS, MAX_PARKED};

impl Worker {
    pub(super) fn arm_listeners(&mut self) {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let Some(fd) = l.fd.as_ref().filter(|_| !l.closing) else {
                continue;
            };
            if l.accept == Accept::Off && self.now >= l.retry_at && self.admission.has_room(l.index)
            {
                self.ring
                    .accept_multi(fd.as_raw_fd(), token::encode(Op::Accept, i as u32, 0));
                l.accept = Accept::Armed;
            }
        }
    }

    /// Stops accepting on every listener that has reached a connection limit; clients wait in
    /// the listen backlog until a connection ends.
    pub(super) fn pause_full_listeners(&mut self) {
        for l in self.listeners.iter_mut() {
            if !self.admission.has_room(l.index) {
                l.cancel_accept(&mut self.ring);
            }
        }
    }

    pub(super) fn on_accept(&mut self, li: usize, c: Completion) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if !c.more() {
            l.accept = Accept::Off;
        }
        if c.result < 0 {
            let err = std::io::Error::from_raw_os_error(-c.result);
            if c.result != -libc::ECANCELED {
                if let Some(more) = self.accept_repeats.hit(self.now) {
                    tracing::warn!(
                        worker = self.id,
                        error = %err,
                        more_since_last_line = more,
                        "accept failed; retrying shortly (repeats are counted, one line per 10 s)"
                    );
                }
                self.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                l.retry_at = self.now + ACCEPT_RETRY_MS;
            }
            return;
        }
        let fd = super::uring::adopt_fd(c.result);
        if self.stopping {
            return;
        }
        self.accepted(fd, li);
    }

    /// A client was accepted on worker listener `li`: admit it, park it (a limit was reached),
    /// or reset it (too many parked).
    pub(super) fn accepted(&mut self, fd: OwnedFd, li: usize) {
        let Some(l) = self.listeners.get(li) else {
            return;
        };
        let (pool, index) = (self.listener_pool(l), l.index);
        if !self.parked.is_empty() || !self.admission.try_admit(index) {
            // Accepted before this worker saw the limit: the client waits here (it would have
            // waited in the backlog), unless too many already do.
            if self.parked.len() < MAX_PARKED {
                self.parked.push_back((fd, li as u16));
            } else {
                socket::set_linger_zero(&fd);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
            self.pause_full_listeners();
            return;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.start_client(fd, pool, li as u16);
        if !self.admission.has_room(index) {
            self.pause_full_listeners();
            // Other workers stop accepting too, at once, rather than at their next wake-up.
            self.queues_shared.wake_others(self.id);
        }
    }

    /// Admits parked clients, oldest first, while the limits have room.
    pub(super) fn admit_parked(&mut self) {
        while let Some((_, li)) = self.parked.front() {
            let li = *li as usize;
            let Some(l) = self.listeners.get(li) else {
                self.parked.pop_front();
                continue;
            };
            let (index, pool) = (l.index, self.listener_pool(l));
            if !self.admission.try_admit(index) {
                return;
            }
            if let Some((fd, _)) = self.parked.pop_front() {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                self.start_client(fd, pool, li as u16);
            }
        }
    }

    /// A connection of worker listener `li` is gone: give its admission back, and wake every
    /// worker if that reopens a listener some may have paused.
    pub(super) fn admission_released(&mut self, li: usize) {
        let Some(l) = self.listeners.get(li) else {
            return;
        };
        if self.admission.release(l.index) {
            self.queues_shared.wake_others(self.id);
        }
    }
}
