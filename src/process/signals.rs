//! Signals, one thread: each one received is logged, then
//! - SIGTERM, SIGINT: the first drains (stop accepting, let streams end up to
//!   `runtime.shutdown_timeout`, reset the rest, exit 0); a second stops at once;
//! - SIGHUP: reloads the config file (see `reload`);
//! - SIGUSR1, SIGUSR2: logged and ignored (their default would kill the process and every
//!   stream with it).
//!
//! SIGPIPE is ignored by the Rust runtime: a peer that closes while ringlb writes is an
//! EPIPE on that one socket. Must never take a lock a worker takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::{Handle, Signals};

use crate::admin::AdminState;
use crate::engine::Stopper;

pub(super) struct Targets {
    pub stopper: Stopper,
    pub shutdown_timeout: Duration,
    pub config_path: PathBuf,
    pub admin: Arc<AdminState>,
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
                    SIGTERM | SIGINT if !draining && !t.shutdown_timeout.is_zero() => {
                        draining = true;
                        tracing::info!(
                            signal = name(sig),
                            shutdown_timeout = ?t.shutdown_timeout,
                            "draining: no new clients; live streams may finish (a second signal stops at once)"
                        );
                        t.stopper.drain(t.shutdown_timeout);
                    }
                    SIGTERM | SIGINT => {
                        tracing::info!(signal = name(sig), "stopping now");
                        t.stopper.stop();
                    }
                    SIGHUP => {
                        tracing::info!(signal = name(sig), path = %t.config_path.display(), "reloading the config");
                        let _ = super::reload::reload(&t.config_path, &t.admin);
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
