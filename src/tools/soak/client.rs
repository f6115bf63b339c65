//! One soak client: registers its stream, connects to ringlb, writes the header, plays the
//! client side of the plan and collects the backend's report into a [`StreamRecord`]. Streams
//! of the first wave wait, connected and claimed by a backend, until every one of them is, so
//! the run holds them all open at once. Must never reset before a backend holds the stream (a
//! reset of a stream no backend saw would prove nothing), nor leave with a claimed stream's
//! report still to come.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit};

use super::header::Header;
use super::outcome::{self, Cause, End, SideState};
use super::plan::Plan;
use super::record::{SetupFailure, StreamRecord};
use super::shared::Registry;
use super::side::{self, Progress, Script};
use super::snapshot;

/// How long a cut client waits to learn whether a backend ever claimed its stream.
const ARRIVAL_GRACE: Duration = Duration::from_secs(2);

/// What every client needs.
pub struct ClientCtx {
    pub registry: Arc<Registry>,
    pub clock: Instant,
    pub target: SocketAddr,
    pub no_progress: Duration,
    /// First-wave streams that are connected and claimed (or gave up trying).
    pub ready: AtomicUsize,
    pub ready_changed: Notify,
    /// Turns true when the first wave may start.
    pub go: watch::Receiver<bool>,
}

/// The backend that claimed the stream, once known.
struct Arrival {
    rx: Option<oneshot::Receiver<usize>>,
    backend: Option<usize>,
}

impl Arrival {
    async fn wait(&mut self, limit: Duration) -> Option<usize> {
        if let Some(rx) = self.rx.as_mut() {
            match tokio::time::timeout(limit, rx).await {
                Ok(Ok(b)) => {
                    self.backend = Some(b);
                    self.rx = None;
                }
                Ok(Err(_)) => self.rx = None,
                Err(_) => {}
            }
        }
        self.backend
    }
}

/// Runs stream `header` to its end. `connecting` is held until the stream is set up, so only
/// so many connects are in flight at once; `first_wave` streams wait for `go`.
pub async fn run_stream(
    ctx: Arc<ClientCtx>,
    header: Header,
    first_wave: bool,
    connecting: OwnedSemaphorePermit,
) -> StreamRecord {
    let progress = Progress::new(ctx.clock);
    let ticket = ctx.registry.register(header.id, progress.stream());
    let mut arrival = Arrival {
        rx: Some(ticket.arrived),
        backend: None,
    };
    let connect_started_ms = Some(progress.now_ms());
    let setup = async {
        let mut s = TcpStream::connect(ctx.target)
            .await
            .map_err(|e| outcome::failure("connect", &e))?;
        let _ = s.set_nodelay(true);
        s.write_all(&header.encode())
            .await
            .map_err(|e| outcome::failure("header write", &e))?;
        Ok(s)
    };
    let stream = match tokio::time::timeout(ctx.no_progress, setup).await {
        Ok(r) => r,
        Err(_) => Err((
            Cause::Timeout,
            format!("no connection within {:?}", ctx.no_progress),
        )),
    }
    .map_err(|(cause, detail)| SetupFailure {
        cause,
        at_ms: progress.now_ms(),
        detail,
    });
    if first_wave {
        if stream.is_ok() {
            arrival.wait(ctx.no_progress).await;
        }
        ctx.ready.fetch_add(1, Ordering::AcqRel);
        ctx.ready_changed.notify_one();
    }
    drop(connecting);
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            ctx.registry.forget(header.id);
            return StreamRecord {
                header,
                client: Err(e),
                connect_started_ms,
                backend: None,
            };
        }
    };
    if first_wave {
        let mut go = ctx.go.clone();
        let _ = go.wait_for(|go| *go).await;
    }
    let plan = Plan::derive(&header);
    let script = Script {
        write: plan.up,
        gate: plan.client_gate,
        reset_at: plan.client_reset_at,
        stall: plan.stall,
        echo: false,
    };
    let mut st = SideState::default();
    // A reset only proves something once a backend holds the stream.
    let reset_ready = async {
        arrival.wait(ctx.no_progress).await;
    };
    let end = side::run(
        &mut stream,
        &script,
        &mut st,
        &progress,
        ctx.no_progress,
        reset_ready,
    )
    .await;
    // A client that gave up aborts, like one that resets on purpose: a FIN would tell the
    // backend that the stream ended well.
    // A stall whose reset the kernel dropped is told apart (see `snapshot`).
    let end = snapshot::classify(end, &stream, "client");
    match end {
        End::Completed => drop(stream),
        _ => side::reset(stream),
    }
    let claimed = match end {
        End::Completed | End::ResetByUs => arrival.wait(Duration::ZERO).await,
        _ => arrival.wait(ARRIVAL_GRACE).await,
    };
    let backend = match claimed {
        // Every claimed stream's backend reports when it ends, and its own no-progress limit
        // makes it end; a backend still trickling bytes through a stalled ringlb may end long
        // after the client did. The run's deadline bounds the wait.
        Some(_) => ticket.report.await.ok(),
        None => None,
    };
    ctx.registry.forget(header.id);
    StreamRecord {
        header,
        client: Ok(st.outcome(end, &progress)),
        connect_started_ms,
        backend,
    }
}
