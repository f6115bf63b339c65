//! Supervision of a running [`Server`]: stop and drain requests ([`Stopper`]), waiting for
//! the workers ([`Server::join`]), and stopping all of them when one fails or panics (a ring
//! that lost completions cannot be trusted; a worker that panicked left its connections
//! unserved). Must never return from `join` with a worker still running.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use super::drain::Control;
use super::server::Server;
use super::uring::Waker;
use super::EngineError;

/// How often a draining server logs how many streams are left.
const DRAIN_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Server {
    /// A handle that can ask the server to stop from another thread (signal handling).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            control: self.control.clone(),
            wakers: self.wakers.clone(),
        }
    }

    /// Stops accepting, closes every connection and waits for the workers to finish.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.stopper().stop();
        self.join()
    }

    /// Waits until every worker has exited: after a [`Stopper::stop`], or as soon as one worker
    /// fails or panics (the others are then stopped and its error returned).
    pub fn join(&mut self) -> Result<(), EngineError> {
        let mut result = Ok(());
        let mut left = self.threads.len();
        while left > 0 {
            let (id, exit) = match self.exits.recv_timeout(DRAIN_PROGRESS_EVERY) {
                Ok(exit) => exit,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.control.drain_timeout_ms().is_some() {
                        tracing::info!(streams_left = self.admission.admitted(), "draining");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            left -= 1;
            if let Err(e) = exit {
                tracing::error!(worker = id, error = %e, "worker died; stopping every worker");
                self.stopper().stop();
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        result
    }

    pub(super) fn stop_workers(&mut self) {
        self.stopper().stop();
        let _ = self.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_workers();
        }
    }
}

/// Asks a running server to stop; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Stopper {
    control: Arc<Control>,
    wakers: Vec<Waker>,
}

impl Stopper {
    /// Graceful stop: stop accepting (taking what already waits in the listen backlogs), let
    /// live streams end for up to `timeout`, then reset the rest. `Duration::ZERO` = [`stop`].
    /// Asking again (another drain) changes nothing; [`Stopper::stop`] still stops at once.
    ///
    /// [`stop`]: Stopper::stop
    pub fn drain(&self, timeout: std::time::Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX / 2);
        self.control.request_drain(ms);
        for w in &self.wakers {
            w.wake();
        }
    }

    pub fn stop(&self) {
        self.control.stop.store(true, Ordering::Release);
        for w in &self.wakers {
            w.wake();
        }
    }
}
