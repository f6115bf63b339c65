//! The epoll driver's pending operations and how each one makes progress: a non-blocking
//! system call when the socket is ready, and the completion io_uring would have posted.
//!
//! An op is attempted when it is submitted (like io_uring's first, non-blocking issue) and
//! again whenever an edge says its socket became ready. Each attempt posts at most what one
//! io_uring completion would say; a multishot op that can go on stays pending. This module must
//! never block, never read into a buffer outside the ring, and never post a final completion
//! twice.

use std::os::fd::RawFd;

use crate::engine::driver::flags;

use super::{sys, Ring};

/// Accepts per listener per readiness pass: the rest wait for the next loop turn, so one busy
/// listener cannot hold the worker (io_uring's multishot accept has a similar retry cap).
const ACCEPT_BUDGET: u32 = 64;

/// epoll readiness bits, as u32.
pub(super) const IN: u32 = libc::EPOLLIN as u32;
pub(super) const OUT: u32 = libc::EPOLLOUT as u32;
pub(super) const RDHUP: u32 = libc::EPOLLRDHUP as u32;
pub(super) const HUP: u32 = libc::EPOLLHUP as u32;
pub(super) const ERR: u32 = libc::EPOLLERR as u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Multishot accept (a listener).
    Accept,
    /// Multishot receive into the ring's buffers.
    RecvMulti,
    /// One receive into one ring buffer.
    RecvOne,
    /// A read of the wake-up eventfd.
    Wake,
    /// A send from a spill block that waits for room.
    SendSpill { id: u32, offset: u32, len: u32 },
    /// A connect under way (EINPROGRESS): done when the socket is writable or failed.
    Connect,
    /// A one-shot poll: done when any of `mask` (epoll bits, the same values as poll's) is
    /// seen.
    Poll { mask: u32 },
}

impl Kind {
    /// Worth a call before anything is known of the socket: a single recv (bulk: bytes are
    /// most likely waiting), an accept (clients may wait in the backlog), a spill send.
    pub fn tried_first(self) -> bool {
        matches!(self, Kind::RecvOne | Kind::Accept | Kind::SendSpill { .. })
    }

    /// What the socket is registered for while this op waits (HUP and ERR always come).
    pub fn interest(self) -> u32 {
        match self {
            Kind::Accept | Kind::RecvMulti | Kind::RecvOne | Kind::Wake => IN | RDHUP,
            Kind::SendSpill { .. } | Kind::Connect => OUT,
            Kind::Poll { mask } => mask & RDHUP,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub ud: u64,
    pub kind: Kind,
}

/// What the driver knows of a socket with pending ops. Exists only while some op is pending:
/// a socket without ops may be closed by the worker at any time (and its number reused), so
/// nothing is kept for it.
#[derive(Debug)]
pub(super) struct FdState {
    pub ops: Vec<Pending>,
    /// A read may succeed: set by an edge, cleared by EAGAIN or a short read.
    pub readable: bool,
    /// A send (or a connect's end) may succeed: set by an edge, cleared by EAGAIN.
    pub writable: bool,
    /// RDHUP/HUP/ERR seen since the state was made (they do not go away).
    pub seen: u32,
    /// In the driver's ready list (work left without a new edge).
    pub queued: bool,
    /// What the socket is registered for (epoll bits, without EPOLLET).
    pub interest: u32,
    /// A listener: its registration is removed when its accept ends (a listener may be shared
    /// with another process after a hand-over, and would keep waking this one).
    pub listener: bool,
}

impl FdState {
    /// For a socket whose readiness is unknown: the first attempt finds out.
    pub fn fresh() -> FdState {
        FdState {
            ops: Vec::with_capacity(2),
            readable: true,
            writable: true,
            seen: 0,
            queued: false,
            interest: 0,
            listener: false,
        }
    }

    /// EOF, reset or error were seen: reads return at once from now on, without a new edge.
    fn ended(&self) -> bool {
        self.seen & (RDHUP | HUP | ERR) != 0
    }
}

impl Ring {
    /// Tries `op` on `fd` once; true if its final completion was posted (the op is over).
    pub(super) fn try_op(&mut self, fd: RawFd, st: &mut FdState, op: Pending) -> bool {
        match op.kind {
            Kind::Poll { mask } => {
                let hit = st.seen & mask;
                if hit != 0 {
                    self.post(op.ud, hit as i32, 0);
                }
                hit != 0
            }
            Kind::Accept => self.try_accept(fd, st, op.ud),
            Kind::RecvMulti => self.try_recv(fd, st, op.ud, true),
            Kind::RecvOne => self.try_recv(fd, st, op.ud, false),
            Kind::Wake => {
                if !st.readable {
                    return false;
                }
                match sys::read_eventfd(fd) {
                    Ok(_) => self.post(op.ud, 8, 0),
                    Err(libc::EAGAIN) | Err(libc::EINTR) => {
                        st.readable = false;
                        return false;
                    }
                    Err(e) => self.post(op.ud, -e, 0),
                }
                true
            }
            Kind::SendSpill { id, offset, len } => {
                if !st.writable {
                    return false;
                }
                match sys::send_spill(fd, &self.spill, id, offset, len) {
                    Ok(n) => self.post(op.ud, n as i32, 0),
                    Err(libc::EAGAIN) | Err(libc::EINTR) => {
                        st.writable = false;
                        return false;
                    }
                    Err(e) => self.post(op.ud, -e, 0),
                }
                true
            }
            Kind::Connect => {
                if !st.writable {
                    return false;
                }
                // Writable without an error: connected. Only a failure needs SO_ERROR's reason.
                let err = if st.seen & (ERR | HUP) != 0 {
                    sys::so_error(fd)
                } else {
                    0
                };
                self.post(op.ud, -err, 0);
                true
            }
        }
    }

    /// Multishot accept: one completion (more = true) per client while the listener has some;
    /// an error ends the op (more = false), as io_uring's does.
    fn try_accept(&mut self, fd: RawFd, st: &mut FdState, ud: u64) -> bool {
        if !st.readable {
            return false;
        }
        for _ in 0..ACCEPT_BUDGET {
            match sys::accept(fd) {
                Ok(client) => self.post(ud, client, flags::MORE),
                Err(libc::EAGAIN) => {
                    st.readable = false;
                    return false;
                }
                // A client that reset while in the backlog, or a signal: try the next one.
                Err(libc::ECONNABORTED) | Err(libc::EINTR) => {}
                Err(e) => {
                    self.post(ud, -e, 0);
                    return true;
                }
            }
        }
        self.queue_ready(fd, st);
        false
    }

    /// One read into the ring's next free buffer. The buffer leaves the ring only if bytes
    /// came (EOF and errors take none); an empty ring is ENOBUFS, which ends even a multishot
    /// recv (the worker re-arms once buffers come back), as with io_uring.
    fn try_recv(&mut self, fd: RawFd, st: &mut FdState, ud: u64, multi: bool) -> bool {
        if !st.readable {
            return false;
        }
        let Some(bid) = self.bufs.next_free() else {
            self.post(ud, -libc::ENOBUFS, 0);
            return true;
        };
        let size = self.bufs.buffer_size() as usize;
        let n = loop {
            match sys::recv_into(fd, &self.bufs, bid) {
                Err(libc::EINTR) => continue,
                r => break r,
            }
        };
        match n {
            Ok(0) => {
                self.post(ud, 0, 0);
                true
            }
            Ok(n) => {
                self.bufs.consume();
                let full = n >= size;
                let mut f = flags::BUFFER | (u32::from(bid) << flags::BUFFER_SHIFT);
                if full {
                    // A full read most likely left bytes behind.
                    f |= flags::SOCK_NONEMPTY;
                }
                if multi {
                    f |= flags::MORE;
                }
                self.post(ud, n as i32, f);
                // A short read emptied the socket (TCP returns less than asked only then):
                // the next bytes raise a new edge. After EOF or an error no edge comes again,
                // so reading goes on until it reports them.
                if full || st.ended() {
                    if multi {
                        self.queue_ready(fd, st);
                    }
                } else {
                    st.readable = false;
                }
                !multi
            }
            Err(libc::EAGAIN) => {
                st.readable = false;
                false
            }
            Err(e) => {
                self.post(ud, -e, 0);
                true
            }
        }
    }

    /// `fd` has work left that no edge will announce: run it again next loop turn.
    pub(super) fn queue_ready(&mut self, fd: RawFd, st: &mut FdState) {
        if !st.queued {
            st.queued = true;
            self.ready.push(fd);
        }
    }
}
