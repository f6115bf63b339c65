//! The epoll driver: the same operations as the io_uring driver, done with readiness and
//! non-blocking system calls on the worker's thread, answered with the same completions
//! (result, `more`, the buffer filled) through a local queue. For hosts where io_uring is
//! blocked (container seccomp profiles, `kernel.io_uring_disabled`, old kernels).
//!
//! Edge-triggered: a socket is registered (EPOLLET, for what the waiting op needs: IN|RDHUP
//! for reads, OUT for a send or connect) when an op first has to wait on it, widened at most
//! once when another kind joins, and left alone as ops come and go: backpressure (not reading
//! a socket) costs no system call, and an unread socket does not wake the worker again and
//! again as it would level-triggered. What an edge said is kept per socket only while some op is pending
//! there: the worker may close a socket without ops at any time and its number may come back
//! for another one. An op that finds its socket not ready waits for the next edge; a read that
//! filled a whole buffer, or a listener with more clients than one pass takes, is run again the
//! next loop turn. Receive buffers come from the same buffer ring as with io_uring, picked only
//! when bytes are there: an idle connection holds none.
//!
//! This module must never block (every socket is non-blocking, every call MSG_DONTWAIT or on a
//! non-blocking descriptor), never post a completion for an op it did not take, and never keep
//! an op's state past its final completion. Its `unsafe` code is in `sys` alone.
#![allow(unsafe_code)]

mod error;
mod ops;
mod sys;
#[cfg(test)]
mod tests;
mod track;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::driver::Completion;
use super::uring::{BufRing, SpillPool, Waker};

pub use error::EpollError;
use ops::{FdState, Kind, Pending, ERR, HUP, OUT, RDHUP};

/// Events taken from the kernel per wait; more wait for the next turn.
const EVENTS: usize = 1024;

use track::Fast;

pub struct Ring {
    epfd: OwnedFd,
    bufs: BufRing,
    spill: SpillPool,
    waker: Waker,
    /// Sockets with pending ops.
    fds: HashMap<RawFd, FdState, Fast>,
    /// Which socket each pending op waits on (for cancel by token).
    owner: HashMap<u64, RawFd, Fast>,
    /// Descriptors this epoll instance (probably) has registered: a hint of whether to MOD or
    /// ADD; a wrong guess costs one failed call, never a missed event.
    registered: HashSet<RawFd, Fast>,
    /// Sockets with work that no edge will announce (see `ops::queue_ready`).
    ready: Vec<RawFd>,
    /// Completions not yet handed to the worker.
    backlog: Vec<Completion>,
    events: Vec<libc::epoll_event>,
}

impl Ring {
    /// An epoll instance, the wake-up eventfd and a buffer ring of `buffer_count` buffers of
    /// `buffer_size` bytes (the same sizes and the same memory rules as with io_uring).
    pub fn new(buffer_count: u32, buffer_size: u32) -> Result<Ring, EpollError> {
        let setup = |what| move |error| EpollError::Setup { what, error };
        let epfd = sys::epoll_create().map_err(setup("epoll_create1"))?;
        let bufs = BufRing::new(buffer_count, buffer_size, 0)
            .map_err(|e| io::Error::other(e.to_string()))
            .map_err(setup("receive buffers"))?;
        let waker = Waker::new().map_err(setup("eventfd"))?;
        Ok(Ring {
            epfd,
            bufs,
            spill: SpillPool::default(),
            waker,
            fds: HashMap::default(),
            owner: HashMap::default(),
            registered: HashSet::default(),
            ready: Vec::new(),
            backlog: Vec::with_capacity(1024),
            events: Vec::with_capacity(EVENTS),
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

    /// Never: a failed call fails its op (a completion), not the driver.
    pub fn failure(&mut self) -> Option<io::Error> {
        None
    }

    /// Multishot accept. The listener is made non-blocking first if it is not (one received
    /// in a hand-over from another program, say): an accept must never block the worker.
    pub fn accept_multi(&mut self, fd: RawFd, ud: u64) {
        if let Err(e) = sys::ensure_nonblocking(fd) {
            return self.post(ud, -e, 0);
        }
        self.submit(
            fd,
            Pending {
                ud,
                kind: Kind::Accept,
            },
        );
    }

    pub fn recv_multi(&mut self, fd: RawFd, ud: u64) {
        self.submit(
            fd,
            Pending {
                ud,
                kind: Kind::RecvMulti,
            },
        );
    }

    pub fn recv_one(&mut self, fd: RawFd, ud: u64) {
        self.submit(
            fd,
            Pending {
                ud,
                kind: Kind::RecvOne,
            },
        );
    }

    /// Sent at once; completes this turn with the bytes taken or -EAGAIN.
    pub fn send_now(&mut self, fd: RawFd, bid: u16, offset: u32, len: u32, ud: u64) {
        let r = loop {
            match sys::send_buffer(fd, &self.bufs, bid, offset, len) {
                Err(libc::EINTR) => continue,
                r => break r,
            }
        };
        self.post(ud, r.map_or_else(|e| -e, |n| n as i32), 0);
    }

    pub fn send_spill(&mut self, fd: RawFd, id: u32, offset: u32, len: u32, ud: u64) -> bool {
        if self.spill.addr(id, offset).is_none() {
            return false;
        }
        let kind = Kind::SendSpill { id, offset, len };
        self.submit(fd, Pending { ud, kind });
        true
    }

    pub fn poll_hangup(&mut self, fd: RawFd, ud: u64) {
        let kind = Kind::Poll {
            mask: RDHUP | HUP | ERR,
        };
        self.submit(fd, Pending { ud, kind });
    }

    pub fn poll_error(&mut self, fd: RawFd, ud: u64) {
        let kind = Kind::Poll { mask: HUP | ERR };
        self.submit(fd, Pending { ud, kind });
    }

    pub fn connect(&mut self, fd: RawFd, addr: SocketAddr, ud: u64) {
        match sys::connect(fd, addr) {
            Ok(()) => self.post(ud, 0, 0),
            Err(libc::EINPROGRESS) | Err(libc::EINTR) => {
                let mut st = self.fds.remove(&fd).unwrap_or_else(FdState::fresh);
                // Writable only once the handshake is over (or failed): the edge says when.
                st.writable = false;
                let interest = st.interest | OUT;
                self.join(
                    fd,
                    st,
                    Pending {
                        ud,
                        kind: Kind::Connect,
                    },
                    Some(interest),
                );
            }
            Err(e) => self.post(ud, -e, 0),
        }
    }

    pub fn shutdown_write(&mut self, fd: RawFd, ud: u64) {
        let r = sys::shutdown_write(fd);
        self.post(ud, r.map_or_else(|e| -e, |()| 0), 0);
    }

    /// The op `target` completes with -ECANCELED (a multishot one with more = false); this
    /// request with 0, or -ENOENT if `target` was not pending (it completed already).
    pub fn cancel(&mut self, target: u64, ud: u64) {
        let Some(fd) = self.owner.remove(&target) else {
            return self.post(ud, -libc::ENOENT, 0);
        };
        let Some(mut st) = self.fds.remove(&fd) else {
            return self.post(ud, -libc::ENOENT, 0);
        };
        match st.ops.iter().position(|o| o.ud == target) {
            Some(i) => {
                st.ops.remove(i);
                self.post(target, -libc::ECANCELED, 0);
                self.post(ud, 0, 0);
            }
            None => self.post(ud, -libc::ENOENT, 0),
        }
        self.settle(fd, st, None);
    }

    /// Every op pending on `fd` completes with -ECANCELED; this request with their number.
    pub fn cancel_fd(&mut self, fd: RawFd, ud: u64) {
        let Some(st) = self.fds.remove(&fd) else {
            return self.post(ud, -libc::ENOENT, 0);
        };
        for op in &st.ops {
            self.owner.remove(&op.ud);
            self.post(op.ud, -libc::ECANCELED, 0);
        }
        self.post(ud, st.ops.len() as i32, 0);
        if st.listener {
            self.deregister(fd);
        }
    }

    pub fn arm_waker(&mut self, ud: u64) {
        let fd = self.waker.raw_fd();
        self.submit(
            fd,
            Pending {
                ud,
                kind: Kind::Wake,
            },
        );
    }

    /// Runs the work left from the last turn, waits for edges (not at all if completions are
    /// already queued, else up to `timeout`), runs the ops they make ready, and hands every
    /// completion to the worker.
    pub fn submit_and_wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<Completion>,
    ) -> Result<(), EpollError> {
        for fd in std::mem::take(&mut self.ready) {
            if let Some(st) = self.fds.get_mut(&fd) {
                st.queued = false;
            }
            self.progress(fd);
        }
        let ms = if self.backlog.is_empty() && self.ready.is_empty() {
            timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        } else {
            0
        };
        let mut events = std::mem::take(&mut self.events);
        let waited = sys::wait(self.epfd.as_raw_fd(), &mut events, ms);
        for ev in &events {
            let (fd, bits) = (ev.u64 as RawFd, ev.events);
            self.on_event(fd, bits);
        }
        self.events = events;
        waited.map_err(EpollError::Wait)?;
        out.append(&mut self.backlog);
        Ok(())
    }

    /// Gives back buffer memory recent demand did not need. With no completion waiting to be
    /// handed out, every buffer taken from the ring has been reported (`taken`) and nothing
    /// fills one until the worker's next call: the ring's count is exact.
    pub fn trim(&mut self) {
        self.bufs.trim(self.backlog.is_empty());
        self.spill.trim();
    }

    /// Nothing to keep: no kernel op outlives a call of this driver.
    pub fn leak_buffers(&mut self) {}

    fn post(&mut self, user_data: u64, result: i32, flags: u32) {
        self.backlog.push(Completion {
            user_data,
            result,
            flags,
        });
    }
}
