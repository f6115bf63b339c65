//! Signals, one thread: each one received is logged, then
//! - SIGTERM, SIGINT: the first drains (stop accepting, let streams end up to
//!   `runtime.shutdown_timeout`, reset the rest, exit 0); a second stops at once. A process
//!   already draining after a hand-over goes on draining at the first (a `systemctl stop` of
//!   the old unit is no reason to cut its streams);
//! - SIGHUP: reloads the config file (see [`Reloader`]);
//! - SIGUSR1, SIGUSR2: logged and ignored (their default would kill the process and every
//!   stream with it).
//!
//! SIGPIPE is ignored by the Rust runtime: a peer that closes while ringlb writes is an
//! EPIPE on that one socket. Must never take a lock a worker takes.

use std::sync::Arc;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::{Handle, Signals};

use crate::engine::Stopper;

use super::reload::Reloader;

pub(super) struct Targets {
    pub stopper: Stopper,
    pub reloader: Arc<Reloader>,
}

/// The signal thread; dropping it stops the thread.
pub(super) struct SignalThread {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGUSR1 => "SIGUSR1",
        SIGUSR2 => "SIGUSR2",
        _ => "signal",
    }
}

/// Installs the handlers: from here on these signals are queued, not fatal, even before
/// [`spawn`] starts acting on them.
pub(super) fn install() -> std::io::Result<Signals> {
    Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2])
}

pub(super) fn spawn(mut signals: Signals, t: Targets) -> std::io::Result<SignalThread> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("ringlb-signals".into())
        .spawn(move || {
            let mut draining = false;
            for sig in signals.forever() {
                match sig {
                    SIGTERM | SIGINT if !draining && !t.reloader.shutdown_timeout().is_zero() => {
                        draining = true;
                        let timeout = t.reloader.shutdown_timeout();
                        tracing::info!(
                            signal = name(sig),
                            shutdown_timeout = ?timeout,
                            "draining: no new clients; live streams may finish (a second signal stops at once)"
                        );
                        t.stopper.drain(timeout);
                    }
                    SIGTERM | SIGINT => {
                        tracing::info!(signal = name(sig), "stopping now");
                        t.stopper.stop();
                    }
                    SIGHUP => {
                        tracing::info!(signal = name(sig), "reloading the config");
                        // The outcome is logged by the reload itself.
                        let _ = t.reloader.reload();
                    }
                    _ => tracing::info!(signal = name(sig), "ignored"),
                }
            }
        })?;
    Ok(SignalThread {
        handle,
        thread: Some(thread),
    })
}
