//! The I/O driver a worker holds: io_uring, or epoll where io_uring cannot be used. Both take
//! the same operations (accept, recv, send, connect, shutdown, poll, cancel, wake) and answer
//! with the same [`Completion`]s, so the relay, connect, accept and queue code exists once.
//!
//! This module only dispatches: it must never do I/O or hold `unsafe` itself, and never let a
//! driver's particularity (an io_uring flag, an epoll event) reach the relay other than as a
//! completion.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use super::epoll::{self, EpollError};
use super::uring::{self, BufRing, SpillPool, UringError, Waker};

/// The completion flags both drivers set, with the kernel's io_uring values (so the io_uring
/// driver passes its CQE flags through unchanged).
pub mod flags {
    /// IORING_CQE_F_BUFFER: the upper 16 bits name the provided buffer filled.
    pub const BUFFER: u32 = 1 << 0;
    /// IORING_CQE_F_MORE: the multishot op goes on.
    pub const MORE: u32 = 1 << 1;
    /// IORING_CQE_F_SOCK_NONEMPTY: the socket still had bytes after this recv.
    pub const SOCK_NONEMPTY: u32 = 1 << 2;
    /// IORING_CQE_BUFFER_SHIFT.
    pub const BUFFER_SHIFT: u32 = 16;
}

/// One completion, copied out of the driver so handlers may submit freely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// True if a multishot op will post more completions.
    pub fn more(&self) -> bool {
        self.flags & flags::MORE != 0
    }

    /// A recv left more bytes waiting in the socket.
    pub fn sock_nonempty(&self) -> bool {
        self.flags & flags::SOCK_NONEMPTY != 0
    }

    /// The provided buffer this completion filled, if any.
    pub fn buffer(&self) -> Option<u16> {
        (self.flags & flags::BUFFER != 0).then_some((self.flags >> flags::BUFFER_SHIFT) as u16)
    }
}

/// Why a worker's driver stopped being trustworthy.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Uring(#[from] UringError),
    #[error("{0}")]
    Epoll(#[from] EpollError),
}

/// One worker's driver.
#[allow(clippy::large_enum_variant)] // one per worker, never moved on a hot path
pub enum Ring {
    Uring(uring::Ring),
    Epoll(epoll::Ring),
}

/// Runs `$e` with `$r` bound to whichever driver this is.
macro_rules! each {
    ($self:expr, $r:ident => $e:expr) => {
        match $self {
            Ring::Uring($r) => $e,
            Ring::Epoll($r) => $e,
        }
    };
}

impl Ring {
    pub fn waker(&self) -> Waker {
        each!(self, r => r.waker())
    }

    pub fn bufs(&self) -> &BufRing {
        each!(self, r => r.bufs())
    }

    pub fn bufs_mut(&mut self) -> &mut BufRing {
        each!(self, r => r.bufs_mut())
    }

    pub fn spill(&self) -> &SpillPool {
        each!(self, r => r.spill())
    }

    pub fn spill_mut(&mut self) -> &mut SpillPool {
        each!(self, r => r.spill_mut())
    }

    /// Why the driver stopped taking submissions, if it did (the worker must then stop).
    pub fn failure(&mut self) -> Option<io::Error> {
        each!(self, r => r.failure())
    }

    /// Multishot accept on a listening socket.
    pub fn accept_multi(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.accept_multi(fd, user_data))
    }

    /// Multishot receive into the receive buffers: one completion per buffer filled.
    pub fn recv_multi(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.recv_multi(fd, user_data))
    }

    /// One receive into one receive buffer (taken only when bytes arrive).
    pub fn recv_one(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.recv_one(fd, user_data))
    }

    /// Sends from receive buffer `bid` without waiting: completes in this turn with what fitted
    /// (maybe less) or -EAGAIN.
    pub fn send_now(&mut self, fd: RawFd, bid: u16, offset: u32, len: u32, user_data: u64) {
        each!(self, r => r.send_now(fd, bid, offset, len, user_data))
    }

    /// Sends from spill block `id`, waiting for room; false if `id` is not a taken block.
    pub fn send_spill(&mut self, fd: RawFd, id: u32, off: u32, len: u32, user_data: u64) -> bool {
        each!(self, r => r.send_spill(fd, id, off, len, user_data))
    }

    /// See [`uring::copy_to_spill`].
    pub fn copy_to_spill(&mut self, bid: u16, from: u32, id: u32, to: u32, len: u32) -> bool {
        uring::copy_to_spill(self.bufs(), self.spill(), (bid, from), (id, to), len)
    }

    /// See [`uring::copy_from_buffer`].
    pub fn copy_from_buffer(&self, bid: u16, from: u32, len: u32, out: &mut Vec<u8>) -> bool {
        uring::copy_from_buffer(self.bufs(), bid, from, len, out)
    }

    /// See [`uring::copy_into_spill`].
    pub fn copy_into_spill(&mut self, src: &[u8], id: u32, to: u32) -> bool {
        uring::copy_into_spill(self.spill(), src, id, to)
    }

    /// Completes when the peer hangs up (FIN, reset or error), without reading.
    pub fn poll_hangup(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.poll_hangup(fd, user_data))
    }

    /// Completes when `fd` has an error (a reset) or is hung up; a FIN alone does not.
    pub fn poll_error(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.poll_error(fd, user_data))
    }

    pub fn connect(&mut self, fd: RawFd, addr: SocketAddr, user_data: u64) {
        each!(self, r => r.connect(fd, addr, user_data))
    }

    pub fn shutdown_write(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.shutdown_write(fd, user_data))
    }

    /// Cancels the op submitted with `target`: it completes with -ECANCELED.
    pub fn cancel(&mut self, target: u64, user_data: u64) {
        each!(self, r => r.cancel(target, user_data))
    }

    /// Cancels every op pending on `fd`.
    pub fn cancel_fd(&mut self, fd: RawFd, user_data: u64) {
        each!(self, r => r.cancel_fd(fd, user_data))
    }

    /// Arms a read of the wake-up eventfd; completes when [`Waker::wake`] is called.
    pub fn arm_waker(&mut self, user_data: u64) {
        each!(self, r => r.arm_waker(user_data))
    }

    /// Submits what was queued this turn, waits for a completion or `timeout`, and moves every
    /// completion into `out`.
    pub fn submit_and_wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<Completion>,
    ) -> Result<(), DriverError> {
        match self {
            Ring::Uring(r) => r.submit_and_wait(timeout, out).map_err(DriverError::from),
            Ring::Epoll(r) => r.submit_and_wait(timeout, out).map_err(DriverError::from),
        }
    }

    /// Gives back buffer memory recent demand did not need.
    pub fn trim(&mut self) {
        each!(self, r => r.trim())
    }

    /// Keeps the buffer memory alive forever (the worker stops with ops maybe in flight).
    pub fn leak_buffers(&mut self) {
        each!(self, r => r.leak_buffers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_flags_are_the_kernels() {
        let c = Completion {
            user_data: 0,
            result: 10,
            flags: flags::BUFFER | flags::MORE | flags::SOCK_NONEMPTY | (7 << flags::BUFFER_SHIFT),
        };
        assert_eq!(io_uring::cqueue::buffer_select(c.flags), Some(7));
        assert!(io_uring::cqueue::more(c.flags) && io_uring::cqueue::sock_nonempty(c.flags));
        assert_eq!(
            (c.buffer(), c.more(), c.sock_nonempty()),
            (Some(7), true, true)
        );
        let plain = Completion { flags: 0, ..c };
        assert_eq!((plain.buffer(), plain.more()), (None, false));
    }
}
