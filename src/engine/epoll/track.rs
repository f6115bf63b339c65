//! The epoll driver's book of sockets: which ops wait on which socket, what the socket is
//! registered for, and what its edges said; how an op joins a socket, how an edge runs the ops
//! it may unblock, and how the socket's state goes once no op is left.
//!
//! A socket's state lives only while some op waits there (the worker may close a socket with
//! no op, and its number may come back for another one): this module must never keep state,
//! or trust a registration, for a socket with no pending op.

use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsRawFd, RawFd};

use super::ops::{FdState, Kind, Pending, ERR, HUP, IN, OUT, RDHUP};
use super::{sys, Ring};

/// Hashes descriptors and op tokens (already well spread integers) with one multiply.
#[derive(Default)]
pub(super) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn write_i32(&mut self, v: i32) {
        self.0 = v as u32 as u64;
    }
}

pub(super) type Fast = BuildHasherDefault<IntHasher>;

impl Ring {
    /// Attempts `op` now (readiness unknown counts as ready); if it must wait, it joins the
    /// socket's pending ops, and the socket's registration is widened to what `op` waits for.
    pub(super) fn submit(&mut self, fd: RawFd, op: Pending) {
        let fresh = !self.fds.contains_key(&fd);
        let mut st = self.fds.remove(&fd).unwrap_or_else(FdState::fresh);
        // On a socket nothing is known of, only ops that usually succeed at once are tried
        // first; the others are registered, which reports at once what the socket is ready for
        // (no EAGAIN paid on a fresh backend socket or a just-read eventfd).
        let try_now = !fresh || op.kind.tried_first();
        if try_now && self.try_op(fd, &mut st, op) {
            return self.settle(fd, st, None);
        }
        let interest = if fresh {
            Some(op.kind.interest())
        } else {
            let wider = st.interest | op.kind.interest();
            (wider != st.interest).then_some(wider)
        };
        self.join(fd, st, op, interest);
    }

    /// `op` waits on `fd`; `interest`: what to (re-)register the socket for first.
    pub(super) fn join(&mut self, fd: RawFd, mut st: FdState, op: Pending, interest: Option<u32>) {
        st.listener |= op.kind == Kind::Accept;
        st.ops.push(op);
        self.owner.insert(op.ud, fd);
        self.settle(fd, st, interest);
    }

    /// Puts `st` back (registering `fd` for `interest` first, if given), or drops it once no
    /// op is left.
    pub(super) fn settle(&mut self, fd: RawFd, mut st: FdState, interest: Option<u32>) {
        if st.ops.is_empty() {
            if st.listener {
                self.deregister(fd);
            }
            return;
        }
        if let Some(interest) = interest {
            if let Err(e) = self.register(fd, interest) {
                // The socket cannot be watched: its ops fail rather than wait forever.
                for op in &st.ops {
                    self.owner.remove(&op.ud);
                    self.post(op.ud, -e, 0);
                }
                return;
            }
            st.interest = interest;
        }
        self.fds.insert(fd, st);
    }

    /// Registers `fd` for `interest` (or re-arms a registration kept from before): either way
    /// the kernel reports at once what of it the socket is ready for, so no edge is lost while
    /// nothing was kept.
    fn register(&mut self, fd: RawFd, interest: u32) -> Result<(), i32> {
        let ep = self.epfd.as_raw_fd();
        let events = interest | libc::EPOLLET as u32;
        let (first, other) = if self.registered.contains(&fd) {
            (libc::EPOLL_CTL_MOD, libc::EPOLL_CTL_ADD)
        } else {
            (libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD)
        };
        match sys::ctl(ep, first, fd, events) {
            Ok(()) => {}
            Err(libc::ENOENT) | Err(libc::EEXIST) => sys::ctl(ep, other, fd, events)?,
            Err(e) => return Err(e),
        }
        self.registered.insert(fd);
        Ok(())
    }

    pub(super) fn deregister(&mut self, fd: RawFd) {
        if self.registered.remove(&fd) {
            // ENOENT/EBADF (already gone) are fine: nothing is registered any more.
            let _ = sys::ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0);
        }
    }

    /// An edge on `fd`: note what it says and run the ops it may unblock.
    pub(super) fn on_event(&mut self, fd: RawFd, bits: u32) {
        let Some(st) = self.fds.get_mut(&fd) else {
            return; // no op waits there (any more)
        };
        if bits & (IN | RDHUP | HUP | ERR) != 0 {
            st.readable = true;
        }
        if bits & (OUT | HUP | ERR) != 0 {
            st.writable = true;
        }
        st.seen |= bits & (RDHUP | HUP | ERR);
        self.progress(fd);
    }

    /// Tries every op pending on `fd`, oldest first.
    pub(super) fn progress(&mut self, fd: RawFd) {
        let Some(mut st) = self.fds.remove(&fd) else {
            return;
        };
        let mut i = 0;
        while i < st.ops.len() {
            let op = st.ops[i];
            if self.try_op(fd, &mut st, op) {
                st.ops.remove(i);
                self.owner.remove(&op.ud);
            } else {
                i += 1;
            }
        }
        self.settle(fd, st, None);
    }
}
