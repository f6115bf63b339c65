//! The io_uring driver, and the buffer layer both drivers share (receive buffers, spill
//! blocks, the wake-up eventfd, the few raw syscalls the engine needs): with `epoll`, the only
//! places in the engine with `unsafe` code.
//!
//! It wraps one io_uring instance and its provided buffer ring behind a safe interface of the
//! few operations the relay needs (`driver::Ring` puts it or the epoll driver in front of the
//! worker). Every pointer handed to the kernel is either owned by this
//! module for as long as the kernel may use it (buffers, the wake-up counter) or copied by the
//! kernel during submission (socket addresses, kept in a scratch list until the turn's submit).
//! It must never free memory an in-flight operation may still touch.
#![allow(unsafe_code)]

mod bufring;
mod copy;
mod error;
mod mapping;
mod spill;
mod sys;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{opcode, squeue, IoUring};
use socket2::SockAddr;

use super::driver::Completion;

pub use bufring::BufRing;
pub use copy::{copy_from_buffer, copy_into_spill, copy_to_spill};
pub use error::UringError;
pub use spill::{SpillPool, BLOCK as SPILL_BLOCK};
pub use sys::{nofile, set_nofile_soft, tcp_bytes_acked};

/// Wakes a worker blocked in its ring from another thread (eventfd read by the ring).
#[derive(Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// A fresh non-blocking eventfd.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: plain eventfd(2) call; the returned fd is checked and then owned.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is a fresh, valid fd that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        Ok(Waker { fd })
    }

    /// The eventfd a driver reads (never closed while the worker runs: the waker holds it).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own; a failure (counter
        // saturated) still leaves the worker woken, so the result is ignored on purpose.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

pub struct Ring {
    // Field order matters: the IoUring is dropped (closed) before the buffer memory.
    uring: IoUring,
    bufs: BufRing,
    spill: SpillPool,
    waker: Waker,
    /// Target of the eventfd read; boxed so its address is stable while the read is pending.
    wake_buf: Box<u64>,
    /// Socket addresses referenced by queued connect SQEs; the kernel copies them during
    /// submission, so they are dropped after the turn's submit.
    /// Boxed: the Vec may reallocate while SQEs still point at earlier addresses.
    #[allow(clippy::vec_box)]
    addrs: Vec<Box<SockAddr>>,
    /// Completions reaped but not yet handed to the worker.
    backlog: Vec<Completion>,
    /// Set when the ring stopped taking submissions: the worker cannot trust it any more.
    failed: Option<io::Error>,
    /// Completions run only inside our own io_uring_enter (DEFER_TASKRUN): between two enters
    /// the kernel touches no buffer.
    defer_taskrun: bool,
}

/// Submit attempts while flushing a full submission queue before the ring is declared stuck:
/// each attempt reaps completions first, so only a kernel that makes no progress at all gets
/// this far.
const PUSH_ATTEMPTS: u32 = 1000;

impl Ring {
    /// Creates the ring (SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them) and its
    /// provided buffer ring, and probes for every op the relay uses.
    pub fn new(entries: u32, buffer_count: u32, buffer_size: u32) -> Result<Ring, UringError> {
        let (uring, defer_taskrun) = build_ring(entries)?;
        error::probe_ops(&uring)?;
        let bufs = BufRing::new(buffer_count, buffer_size, 0)?;
        bufs.register(&uring)?;
        let waker = Waker::new().map_err(|error| UringError::Setup {
            what: "eventfd",
            error,
        })?;
        Ok(Ring {
            uring,
            bufs,
            spill: SpillPool::default(),
            waker,
            wake_buf: Box::new(0),
            addrs: Vec::new(),
            backlog: Vec::with_capacity(1024),
            failed: None,
            defer_taskrun,
        })
    }

    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    pub fn bufs(&self) -> &BufRing {
        &self.bufs
    }

    pub fn bufs_mut(&mut self) -> &mut BufRing {
        &mut self.bufs
    }

    pub fn spill(&self) -> &SpillPool {
        &self.spill
    }

    pub fn spill_mut(&mut self) -> &mut SpillPool {
        &mut self.spill
    }

    /// Why the ring stopped taking submissions, if it did (then nothing more is submitted and
    /// the worker must stop).
    pub fn failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    fn push(&mut self, entry: squeue::Entry) {
        if self.failed.is_some() {
            return;
        }
        for _ in 0..PUSH_ATTEMPTS {
            // SAFETY: every entry built by this module references only memory that outlives
            // the op (see each builder below).
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Queue full: hand what we have to the kernel and retry. EBUSY (completions backed
            // up) and EAGAIN (no memory for now) resolve once completions are reaped, which
            // `collect` does; any other error means the ring is unusable.
            match self.uring.submit() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EBUSY) | Some(libc::EAGAIN) | Some(libc::EINTR)
                    ) => {}
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
            self.collect();
        }
        self.failed = Some(io::Error::other(
            "submission queue stayed full: the kernel takes no more entries",
        ));
    }

    /// Multishot accept on a listening socket.
    pub fn accept_multi(&mut self, fd: RawFd, user_data: u64) {
        let e = opcode::AcceptMulti::new(Fd(fd))
            .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Multishot receive into the provided buffer ring.
    pub fn recv_multi(&mut self, fd: RawFd, user_data: u64) {
        let e = opcode::RecvMulti::new(Fd(fd), self.bufs.bgid())
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// One receive into one provided buffer (picked by the kernel when bytes arrive). Used
    /// while the other side still has bytes queued: unlike multishot, it cannot overshoot.
    pub fn recv_one(&mut self, fd: RawFd, user_data: u64) {
        let e = opcode::Recv::new(Fd(fd), std::ptr::null_mut(), self.bufs.buffer_size())
            .buf_group(self.bufs.bgid())
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(user_data);
        self.push(e);
    }

    /// Sends `len` bytes of provided buffer `bid` from `offset`, without waiting: it completes
    /// in this turn's submit with what fitted in the socket (maybe less) or EAGAIN, so a
    /// receive buffer is never held by a send parked on a full socket.
    pub fn send_now(&mut self, fd: RawFd, bid: u16, offset: u32, len: u32, user_data: u64) {
        let ptr = self.bufs.addr(bid, offset);
        let e = opcode::Send::new(Fd(fd), ptr, len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Sends `len` bytes of spill block `id` from `offset`, waiting for room in the socket. The
    /// block stays taken (owned by the worker) until this send completes. False if `id` is
    /// not a taken block (nothing is submitted).
    pub fn send_spill(
        &mut self,
        fd: RawFd,
        id: u32,
        offset: u32,
        len: u32,
        user_data: u64,
    ) -> bool {
        let Some(ptr) = self.spill.addr(id, offset) else {
            return false;
        };
        let e = opcode::Send::new(Fd(fd), ptr, len.min(SPILL_BLOCK - offset.min(SPILL_BLOCK)))
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data);
        self.push(e);
        true
    }

    /// Watches a socket for its peer hanging up (FIN, reset or error) without reading it.
    pub fn poll_hangup(&mut self, fd: RawFd, user_data: u64) {
        let events = (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) as u32;
        let e = opcode::PollAdd::new(Fd(fd), events)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Completes when `fd` has an error (a reset) or is hung up; a FIN alone does not.
    pub fn poll_error(&mut self, fd: RawFd, user_data: u64) {
        let events = (libc::POLLHUP | libc::POLLERR) as u32;
        let e = opcode::PollAdd::new(Fd(fd), events)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    pub fn connect(&mut self, fd: RawFd, addr: SocketAddr, user_data: u64) {
        let sa = Box::new(SockAddr::from(addr));
        let e = opcode::Connect::new(Fd(fd), sa.as_ptr().cast(), sa.len())
            .build()
            .user_data(user_data);
        // The kernel copies the address while preparing the SQE during submit; keep it alive
        // until then.
        self.addrs.push(sa);
        self.push(e);
    }

    pub fn shutdown_write(&mut self, fd: RawFd, user_data: u64) {
        let e = opcode::Shutdown::new(Fd(fd), libc::SHUT_WR)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Cancels the op submitted with `target`.
    pub fn cancel(&mut self, target: u64, user_data: u64) {
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Cancels every op pending on `fd`.
    pub fn cancel_fd(&mut self, fd: RawFd, user_data: u64) {
        let e = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Arms a read of the wake-up eventfd; completes when [`Waker::wake`] is called.
    pub fn arm_waker(&mut self, user_data: u64) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let e = opcode::Read::new(Fd(self.waker.fd.as_raw_fd()), buf.cast(), 8)
            .build()
            .user_data(user_data);
        self.push(e);
    }

    /// Publishes recycled buffers, submits everything queued this turn and waits for at least
    /// one completion or `timeout`; then moves all completions into `out`.
    pub fn submit_and_wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<Completion>,
    ) -> Result<(), UringError> {
        self.bufs.publish();
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        match self.uring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {}
                // The kernel dropped completions (no memory for its overflow list): some op's
                // end is lost for good, and with it the slot, count and buffers it would free.
                Some(libc::EBADR) => return Err(UringError::CompletionsLost),
                _ => return Err(UringError::Submit(e)),
            },
        }
        // Only once the kernel has taken every queued entry (a partial submit leaves some for
        // the next turn) are the addresses they point at no longer needed.
        if self.uring.submission().is_empty() {
            self.addrs.clear();
        }
        self.collect();
        out.append(&mut self.backlog);
        Ok(())
    }

    fn collect(&mut self) {
        for cqe in self.uring.completion() {
            self.backlog.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }

    /// Gives back buffer memory recent demand did not need (see `BufRing::trim`). Buffers still
    /// in the ring are discarded only when that cannot race the kernel: with DEFER_TASKRUN the
    /// kernel fills buffers only inside our io_uring_enter, and with every completion of the
    /// last one reaped and handled (none waiting here, in the completion queue or in the
    /// kernel's overflow list) every buffer it filled has been reported.
    pub fn trim(&mut self) {
        let quiescent = self.defer_taskrun
            && self.backlog.is_empty()
            && !self.uring.submission().cq_overflow()
            && self.uring.completion().is_empty();
        self.bufs.trim(quiescent);
        self.spill.trim();
    }

    /// Keeps the buffer memory alive forever: called when the worker stops with ops that may
    /// still be in flight.
    pub fn leak_buffers(&mut self) {
        self.bufs.leak_on_drop();
        self.spill.leak_on_drop();
    }
}

/// Takes ownership of a descriptor the kernel returned in a completion (accept).
pub fn adopt_fd(fd: i32) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: a non-negative accept result is a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The ring, and whether it has DEFER_TASKRUN.
fn build_ring(entries: u32) -> Result<(IoUring, bool), UringError> {
    let cq = entries.saturating_mul(4);
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(cq)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all();
    match builder.build(entries) {
        Ok(r) => return Ok((r, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::warn!(
                "io_uring: SINGLE_ISSUER/DEFER_TASKRUN not available, using plain setup"
            );
        }
        Err(e) => return Err(UringError::from_setup(e)),
    }
    IoUring::builder()
        .setup_cqsize(cq)
        .build(entries)
        .map(|r| (r, false))
        .map_err(UringError::from_setup)
}
