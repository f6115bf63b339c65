//! The engine's half of a hand-over to a new ringlb process (the process side, with the unix
//! socket and its protocol, is `crate::process::handover`).
//!
//! In the old process: [`EngineHandover::lend`] asks every worker, through its mailbox, for a
//! duplicate of each listening socket it accepts on (one per listener and worker; the worker
//! keeps its own and goes on accepting), to be sent to the new process;
//! [`EngineHandover::handed_over`] then says which of them the new process took and drains
//! exactly as on SIGTERM: every listening socket's backlog is taken before our copy is closed
//! (see `drain` for why a taken one's too); a taken socket stays open in the new process,
//! which goes on accepting from the same kernel queue.
//! In the new process: [`InheritedListener`]s are the sockets received, given to
//! [`Server::start_with_options`](super::Server::start_with_options) through
//! `StartOptions::inherited`, and [`Armed`] tells when every worker has its accepts in the
//! kernel. Must never hand out a socket a worker is closing, and never be on a worker's
//! per-connection path (a letter is read once per loop turn).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::drain::Control;
use super::mailbox::{Mail, Mailbox};
use super::socket;
use super::supervise::Stopper;
use super::uring::Waker;
use super::worker::Worker;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LendError {
    #[error("this process is draining or stopping; it has no listening socket to hand over")]
    Stopping,
    #[error("worker {worker} cannot duplicate its socket of listener {listener}: {error}")]
    Dup {
        worker: usize,
        listener: usize,
        error: std::io::Error,
    },
    #[error("{missing} of {workers} workers did not answer within {within:?}")]
    NoAnswer {
        missing: usize,
        workers: usize,
        within: Duration,
    },
}

/// A duplicate of one worker's listening socket, lent for a hand-over.
#[derive(Debug)]
pub struct LentListener {
    /// The listener's index in the running config.
    pub index: usize,
    pub worker: usize,
    /// The address it is bound to.
    pub addr: SocketAddr,
    pub fd: OwnedFd,
}

/// Listening sockets of one listener received from the process taken over: workers
/// `0..fds.len()` accept on them instead of binding (the others bind and join them).
#[derive(Debug)]
pub struct InheritedListener {
    /// The listener's index in the new config.
    pub index: usize,
    /// The address the sockets are bound to (a port 0 in the config is this port).
    pub addr: SocketAddr,
    pub fds: Vec<OwnedFd>,
}

/// A worker's answer to [`Mail::Lend`].
pub(super) type LendReply = (usize, Result<Vec<(usize, SocketAddr, OwnedFd)>, LendError>);

/// Held by the control plane of the old process; cheap to clone.
#[derive(Clone)]
pub struct EngineHandover {
    pub(super) mailbox: Arc<Mailbox>,
    pub(super) wakers: Vec<Waker>,
    pub(super) control: Arc<Control>,
    pub(super) stopper: Stopper,
}

impl EngineHandover {
    /// Duplicates of every socket the workers accept on, ordered by listener then worker; an
    /// error if the process is already draining or a worker does not answer `within`.
    pub fn lend(&self, within: Duration) -> Result<Vec<LentListener>, LendError> {
        if self.control.is_stopping() {
            return Err(LendError::Stopping);
        }
        let workers = self.wakers.len();
        let (tx, rx) = mpsc::channel();
        for w in 0..workers {
            self.mailbox.post(w, Mail::Lend(tx.clone()));
        }
        drop(tx);
        for w in &self.wakers {
            w.wake();
        }
        let until = Instant::now() + within;
        let mut lent = Vec::new();
        for answered in 0..workers {
            let left = until.saturating_duration_since(Instant::now());
            let Ok((worker, reply)) = rx.recv_timeout(left) else {
                return Err(LendError::NoAnswer {
                    missing: workers - answered,
                    workers,
                    within,
                });
            };
            for (index, addr, fd) in reply? {
                lent.push(LentListener {
                    index,
                    worker,
                    addr,
                    fd,
                });
            }
        }
        lent.sort_by_key(|l| (l.index, l.worker));
        Ok(lent)
    }

    /// The new process accepts on the sockets `taken` (listener index, worker): stop
    /// accepting everywhere and drain as on SIGTERM (a taken socket only loses our copy: the
    /// new process holds the same socket).
    pub fn handed_over(&self, taken: Vec<(usize, usize)>, timeout: Duration) {
        *self.control.handed_over.lock() = taken;
        self.stopper.drain(timeout);
    }
}

/// Counts workers whose accepts are in the kernel (after their first loop turn).
#[derive(Default)]
pub(super) struct Armed {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Armed {
    pub fn arrive(&self) {
        *self.count.lock() += 1;
        self.changed.notify_all();
    }

    /// True once `workers` have arrived, false if `within` passed first.
    pub fn wait(&self, workers: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        let mut count = self.count.lock();
        while *count < workers {
            if self.changed.wait_until(&mut count, until).timed_out() {
                return *count >= workers;
            }
        }
        true
    }
}

impl Worker {
    /// Answers [`Mail::Lend`]: a duplicate of each socket this worker accepts on.
    pub(super) fn lend(&self, reply: &mpsc::Sender<LendReply>) {
        let answer = if self.stopping || self.drain_until.is_some() {
            Err(LendError::Stopping)
        } else {
            self.listeners
                .iter()
                .filter(|l| !l.closing)
                .filter_map(|l| l.fd.as_ref().map(|fd| (l.index, fd)))
                .map(|(index, fd)| {
                    let dup = |error| LendError::Dup {
                        worker: self.id,
                        listener: index,
                        error,
                    };
                    let addr = socket::local_addr(fd).map_err(dup)?;
                    let copy = fd.try_clone().map_err(dup)?;
                    Ok((index, addr, copy))
                })
                .collect()
        };
        let _ = reply.send((self.id, answer));
    }

    /// At the start of a drain: marks the listeners a hand-over gave to a new process.
    pub(super) fn mark_handed_over(&mut self) {
        let taken = self.control.handed_over.lock();
        for l in self.listeners.iter_mut() {
            if taken.contains(&(l.index, self.id)) {
                l.handed_over = true;
            }
        }
    }
}
