//! Starting, running and stopping a mock backend: the listening socket, the accept loop and
//! the handle ([`MockBackend`]) that owns them.
//!
//! Every connection task lives in the accept loop's `JoinSet`, so stopping the loop ends every
//! open connection too. Must never spin on accept errors (it backs off) and never outlive its
//! handle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::capacity::Gpu;
use super::health::{HealthMode, HealthSwitch};
use super::stall::StallSwitch;
use super::stats::{BackendStats, ConnectionGuard};
use super::{external, inference, raw, FleetError, MetricsFlavor, MockOptions, Mode};

/// Listen backlog: a benchmark opening hundreds of connections at once must not overflow it.
const BACKLOG: i32 = 1024;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What every connection of one backend shares.
pub(crate) struct Shared {
    pub name: String,
    pub mode: Mode,
    pub stats: Arc<BackendStats>,
    pub gpu: Gpu,
    pub idle_timeout: Option<Duration>,
    pub health: Arc<HealthSwitch>,
    pub stall: Arc<StallSwitch>,
    pub metrics_flavor: MetricsFlavor,
    /// Phantom streams started with the accept loop.
    pub external_load: usize,
}

/// A running mock backend. Dropping it (or [`MockBackend::shutdown`]) stops accepting and ends
/// every open connection.
pub struct MockBackend {
    name: String,
    addr: SocketAddr,
    stats: Arc<BackendStats>,
    health: Arc<HealthSwitch>,
    stall: Arc<StallSwitch>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Validates `opts`, binds the listening socket and builds the shared state.
fn prepare(opts: &MockOptions) -> Result<(std::net::TcpListener, Arc<Shared>), FleetError> {
    let spec = opts.validate()?;
    let bind_err = |source| FleetError::Bind {
        addr: opts.listen,
        source,
    };
    let socket = Socket::new(
        Domain::for_address(opts.listen),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&opts.listen.into()).map_err(bind_err)?;
    socket.listen(BACKLOG).map_err(bind_err)?;
    let stats = Arc::new(BackendStats::new(&opts.name, opts.capacity));
    let stall = StallSwitch::new();
    let shared = Arc::new(Shared {
        name: opts.name.clone(),
        mode: opts.mode,
        gpu: Gpu::new(stats.clone(), stall.clone(), spec),
        stats,
        idle_timeout: opts.idle_timeout,
        health: Arc::new(HealthSwitch::new(opts.warmup, opts.health_delay)),
        stall,
        metrics_flavor: opts.metrics_flavor,
        // The raw modes have no generation to load.
        external_load: if opts.mode == Mode::Inference {
            opts.external_load
        } else {
            0
        },
    });
    Ok((socket.into(), shared))
}

/// Builds the runtime a self-hosted backend runs on.
fn runtime(opts: &MockOptions) -> Result<tokio::runtime::Runtime, FleetError> {
    let mut builder = if opts.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(opts.worker_threads);
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(|source| FleetError::Runtime {
            name: opts.name.clone(),
            source,
        })
}

impl MockBackend {
    /// Binds and serves on the current tokio runtime; returns once listening.
    pub async fn start(opts: MockOptions) -> Result<MockBackend, FleetError> {
        let (listener, shared) = prepare(&opts)?;
        let bind_err = |source| FleetError::Bind {
            addr: opts.listen,
            source,
        };
        let addr = listener.local_addr().map_err(bind_err)?;
        let listener = TcpListener::from_std(listener).map_err(bind_err)?;
        let (stop, stopped) = oneshot::channel();
        let stats = shared.stats.clone();
        let health = shared.health.clone();
        let stall = shared.stall.clone();
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
        Ok(MockBackend {
            name: opts.name,
            addr,
            stats,
            health,
            stall,
            stop: Some(stop),
            task: Some(task),
            thread: None,
        })
    }

    /// Serves on a runtime of its own thread (for callers without a runtime, or that must
    /// not share theirs); returns once listening.
    pub fn spawn(opts: MockOptions) -> Result<MockBackend, FleetError> {
        let (listener, shared) = prepare(&opts)?;
        let listen = opts.listen;
        let bind_err = move |source| FleetError::Bind {
            addr: listen,
            source,
        };
        let addr = listener.local_addr().map_err(bind_err)?;
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stats = shared.stats.clone();
        let health = shared.health.clone();
        let stall = shared.stall.clone();
        let thread_opts = opts.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-{}", opts.name))
            .spawn(move || {
                // The runtime is built and dropped on this thread: never inside a caller's
                // async context, where dropping a runtime is not allowed.
                let rt = match runtime(&thread_opts) {
                    Ok(rt) => rt,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                rt.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = ready_tx.send(Ok(()));
                            accept_loop(listener, shared, stopped).await;
                        }
                        Err(source) => drop(ready_tx.send(Err(bind_err(source)))),
                    }
                });
            })
            .map_err(|source| FleetError::Runtime {
                name: opts.name.clone(),
                source,
            })?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(FleetError::Runtime {
                name: opts.name.clone(),
                source: std::io::Error::other("backend thread ended while starting"),
            })
        });
        let backend = MockBackend {
            name: opts.name,
            addr,
            stats,
            health,
            stall,
            stop: Some(stop),
            task: None,
            thread: Some(thread),
        };
        started.map(|()| backend)
    }

    /// The address it listens on (with the real port when the options said port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The backend's name (`x-backend`, metrics label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live counters; cheap to clone and to [`BackendStats::snapshot`].
    pub fn stats(&self) -> Arc<BackendStats> {
        self.stats.clone()
    }

    /// Switches what `GET /health` does from now on (the warm-up, if any, still comes first).
    pub fn set_health(&self, mode: HealthMode) {
        self.health.set(mode);
    }

    /// `GET /health` requests received so far.
    pub fn health_checks(&self) -> u64 {
        self.health.checks()
    }

    /// Freezes generation: streams stay open and keep their slots (still `running`), but no
    /// token is emitted and the generation counter stops, like a hung GPU. Same as
    /// `POST /admin/stall`.
    pub fn stall(&self) {
        self.stall.set(true);
    }

    /// Resumes generation at its pace (tokens due during the stall do not burst out).
    pub fn unstall(&self) {
        self.stall.set(false);
    }

    /// Whether generation is stalled now.
    pub fn stalled(&self) -> bool {
        self.stall.get()
    }

    /// Stops accepting and ends open connections. For a [`MockBackend::start`]ed backend this
    /// happens on its runtime right after the call; use [`MockBackend::stop`] to wait for it.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Like [`MockBackend::shutdown`], and returns once the listener and every connection are
    /// closed.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!(backend = %self.name, "mock backend thread panicked");
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    let mut phantoms = JoinSet::new();
    external::spawn(&mut phantoms, &shared, shared.external_load);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        error!(backend = %shared.name, error = %e, "connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(connection(stream, shared.clone()));
                }
                Err(e) => {
                    warn!(backend = %shared.name, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    phantoms.shutdown().await;
    conns.shutdown().await;
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let _open = ConnectionGuard::new(&shared.stats);
    // Tokens are small writes that must leave at once, not wait for an ACK (Nagle).
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    match shared.mode {
        Mode::Inference => inference::serve(stream, shared.clone()).await,
        mode => raw::serve(stream, mode, &shared.stats).await,
    }
}

/// Runs one backend on its own runtime until SIGINT or SIGTERM; prints
/// `mock-backend NAME listening on ADDR` on stdout once ready (scripts wait for that line).
pub fn run_blocking(opts: MockOptions) -> Result<(), FleetError> {
    let rt = runtime(&opts)?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let signal_err = |source| FleetError::Signal { source };
        let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
        let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
        let mode = opts.mode;
        let backend = MockBackend::start(opts).await?;
        info!(backend = backend.name(), addr = %backend.addr(), ?mode, "mock backend listening");
        println!(
            "mock-backend {} listening on {}",
            backend.name(),
            backend.addr()
        );
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        info!(backend = backend.name(), "mock backend stopping");
        backend.stop().await;
        Ok(())
    })
}
