//! The `ringlb run` process around the engine: start-up (descriptor limit, control plane,
//! backend names resolved, engine, health checks, DNS refresh, admin API), the signals an operator or init system sends, the
//! hand-over to a new process (`handover`) and the stop. The engine never sees a signal; this
//! module turns them into engine calls.
//! Must never block a worker, and never exit with streams cut that a drain could have saved.

pub mod handover;
mod layout;
mod reload;
mod signals;

pub use layout::{lay_out, Layout};
pub use reload::Reloader;

use std::path::Path;
use std::sync::Arc;

use crate::admin::{self, AdminError};
use crate::config::Config;
use crate::control::{ControlError, ControlPlane};
use crate::engine::{EngineError, Server, StartOptions};

use handover::HandoverError;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start ringlb: {0}")]
    Engine(#[source] EngineError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("worker failed: {0}")]
    Worker(#[source] EngineError),
    #[error(transparent)]
    Handover(#[from] HandoverError),
    #[error("cannot start the hand-over thread: {0}")]
    HandoverThread(std::io::Error),
}

impl ProcessError {
    /// An address in the config cannot be bound: the operator's to fix, like a bad config.
    pub fn is_bind(&self) -> bool {
        match self {
            ProcessError::Engine(e) => e.is_listen(),
            ProcessError::Admin(_) => true,
            _ => false,
        }
    }

    /// The config or what it names is at fault (exit code 2): an address that cannot be
    /// bound, a hand-over socket that cannot be made, `--take-over` without one.
    pub fn is_config(&self) -> bool {
        match self {
            ProcessError::Handover(e) => e.is_config(),
            _ => self.is_bind(),
        }
    }
}

/// How `ringlb run` starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Take the listening sockets of the ringlb serving `runtime.handover_socket`, which then
    /// drains (`--take-over`).
    pub take_over: bool,
    /// The same if a ringlb serves that socket, else a plain start (`--take-over-if-running`:
    /// one unit line for a first start, a reboot and an upgrade).
    pub take_over_if_running: bool,
}

/// Runs the balancer on `cfg` (read from `path`) until it is stopped by a signal; returns once
/// every worker has exited.
pub fn run(cfg: &Config, path: &Path) -> Result<(), ProcessError> {
    run_with(cfg, path, RunOptions::default())
}

/// [`run`], taking over from a running process if `options.take_over`.
pub fn run_with(cfg: &Config, path: &Path, options: RunOptions) -> Result<(), ProcessError> {
    // systemd's default soft limit (1024) would cap ringlb at ~480 streams.
    let nofile = crate::engine::raise_nofile();
    tracing::info!(nofile, "open files limit");
    let signals = signals::install().map_err(ProcessError::Signals)?;
    let take_over =
        options.take_over || (options.take_over_if_running && handover::running(cfg, path)?);
    let (taking, inherited, admin_socket) = if take_over {
        let (t, inherited, admin) = handover::take(cfg, path)?;
        (Some(t), inherited, admin)
    } else {
        (None, Vec::new(), None)
    };
    let mut endpoint = match (&cfg.runtime.handover_socket, &taking) {
        (Some(at), None) => Some(handover::Endpoint::create(at)?),
        _ => None,
    };
    let start = StartOptions {
        inherited,
        ..StartOptions::default()
    };
    let control = ControlPlane::start()?;
    // Names resolve before the workers take clients, so a pool named by DNS has its backends
    // from the first connection; one that does not resolve starts without them (logged) and
    // is retried every `dns_refresh`.
    let (resolved, refresher) = crate::dns::resolve_at_start(control.handle(), cfg);
    let mut server =
        Server::start_with_options(&resolved.expand(cfg), start).map_err(ProcessError::Engine)?;
    let _checker = crate::health::Checker::spawn(control.handle(), server.table().clone());
    let _scraper = crate::health::EngineScraper::spawn(control.handle(), server.table().clone());
    // The admin state exists without `[admin]` too: reload goes through it.
    let state = Arc::new(admin::AdminState::new(server.observer(), cfg));
    state.seed_resolved(resolved);
    crate::dns::spawn(control.handle(), state.clone(), refresher);
    let reloader = Arc::new(Reloader::new(path, cfg, state.clone(), server.reloader()));
    let hook = reloader.clone();
    state.set_reload_hook(Box::new(move || hook.reload()));
    let admin = admin::start_on(control.handle(), cfg, state.clone(), admin_socket)?;
    if let Some(t) = taking {
        endpoint = t.finish(&server)?;
    }
    let admin = Arc::new(parking_lot::Mutex::new(admin));
    let _giver = match endpoint {
        Some(e) => Some(
            handover::serve(
                e,
                handover::GiveCtx {
                    engine: server.handover(),
                    observer: server.observer(),
                    reloader: reloader.clone(),
                    admin: admin.clone(),
                },
            )
            .map_err(ProcessError::HandoverThread)?,
        ),
        None => None,
    };
    let _signals = signals::spawn(
        signals,
        signals::Targets {
            stopper: server.stopper(),
            reloader,
        },
    )
    .map_err(ProcessError::Signals)?;
    // Last: scripts and tests take this line as "ready" (signals handled, admin up).
    for (name, addr) in server.listeners() {
        tracing::info!(listener = %name, %addr, "listening");
    }
    let joined = server.join();
    let t = server.stats();
    tracing::info!(
        accepted = t.accepted,
        completed = t.completed,
        resets = t.resets,
        truncated = t.truncated,
        connect_failures = t.connect_failures,
        retries = t.retries,
        no_backend = t.no_backend,
        queue_full = t.queue_full,
        refused = t.refused,
        accept_errors = t.accept_errors,
        idle_timeouts = t.idle_timeouts,
        half_close_timeouts = t.half_close_timeouts,
        stuck_revived = t.stuck_revived,
        "stopped"
    );
    drop(_giver);
    drop(admin);
    joined.map_err(ProcessError::Worker)
}
