//! The soak's backends: in-process tokio listeners on 127.0.0.1 that read each stream's header,
//! play the backend side of its plan and report what they saw to the [`Registry`]. A backend can
//! be killed (listener and every connection dropped at once, each with a reset) and restarted on
//! the same port. Must never outlive a kill with any socket open, and never serve a stream it
//! could not tie to a registered id.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::header::{Header, HEADER_LEN};
use super::outcome::{End, SideState};
use super::plan::Plan;
use super::shared::{BackendReport, Registry};
use super::side::{self, Progress, Script};
use super::snapshot;

/// Listen backlog of each backend (the kernel caps it at net.core.somaxconn).
const BACKLOG: u32 = 4096;
/// Pause between attempts to bind a restarted backend's port while the kernel still holds it.
const REBIND_RETRY: Duration = Duration::from_millis(50);

/// What every backend connection needs.
pub struct Ctx {
    pub registry: Arc<Registry>,
    pub clock: Instant,
    pub no_progress: Duration,
    /// Turns true when the first wave may start: a claimed stream waits for it, so the run
    /// holds every stream of the first wave open and quiet at once.
    pub go: watch::Receiver<bool>,
}

/// Connection tasks of one life of a backend, so a kill can wait for the last to close.
#[derive(Default)]
struct Live {
    conns: AtomicUsize,
    gone: Notify,
}

struct LiveGuard(Arc<Live>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.conns.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.gone.notify_waiters();
        }
    }
}

struct Life {
    kill: watch::Sender<bool>,
    live: Arc<Live>,
    acceptor: JoinHandle<()>,
}

pub struct Backend {
    pub index: usize,
    pub addr: SocketAddr,
    ctx: Arc<Ctx>,
    life: Option<Life>,
    /// While killed: a socket bound to the port but not listening, so connects are refused as
    /// with no process there, and no outgoing connection takes the port as its ephemeral one.
    held: Option<TcpSocket>,
}

fn bound(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bound(addr)?.listen(BACKLOG)
}

impl Backend {
    /// Binds backend `index` on 127.0.0.1, port 0.
    pub fn start(index: usize, ctx: Arc<Ctx>) -> std::io::Result<Backend> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let mut b = Backend {
            index,
            addr,
            ctx,
            life: None,
            held: None,
        };
        b.serve(listener);
        Ok(b)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (kill, kill_rx) = watch::channel(false);
        let live = Arc::new(Live::default());
        let acceptor = tokio::spawn(accept_loop(
            listener,
            self.index,
            self.ctx.clone(),
            kill_rx,
            live.clone(),
        ));
        self.life = Some(Life {
            kill,
            live,
            acceptor,
        });
    }

    /// Drops the listener and resets every connection; returns once all are closed, with the
    /// instant the listening socket closed (connections in its accept queue were reset then;
    /// on a busy runtime that can be a good while after the kill was asked for).
    pub async fn kill(&mut self) -> Instant {
        let Some(life) = self.life.take() else {
            return Instant::now();
        };
        let _ = life.kill.send(true);
        let _ = life.acceptor.await;
        let closed = Instant::now();
        self.held = bound(self.addr).ok();
        loop {
            let gone = life.live.gone.notified();
            if life.live.conns.load(Ordering::Acquire) == 0 {
                return closed;
            }
            gone.await;
        }
    }

    /// Listens again on the same port; returns the number of bind attempts it took (1 when the
    /// port could be held while down).
    pub async fn restart(&mut self, deadline: Instant) -> std::io::Result<u32> {
        if let Some(listener) = self.held.take().and_then(|s| s.listen(BACKLOG).ok()) {
            self.serve(listener);
            return Ok(1);
        }
        let mut attempts = 1;
        loop {
            attempts += 1;
            match listen(self.addr) {
                Ok(listener) => {
                    self.serve(listener);
                    return Ok(attempts);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    tokio::time::sleep(REBIND_RETRY).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    index: usize,
    ctx: Arc<Ctx>,
    mut kill: watch::Receiver<bool>,
    live: Arc<Live>,
) {
    loop {
        tokio::select! {
            biased;
            _ = kill.changed() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    live.conns.fetch_add(1, Ordering::AcqRel);
                    let guard = LiveGuard(live.clone());
                    tokio::spawn(serve(stream, index, ctx.clone(), kill.clone(), guard));
                }
                Err(e) => {
                    ctx.registry.note_bad(format!("backend {index}: accept failed: {e}"));
                    tokio::time::sleep(REBIND_RETRY).await;
                }
            },
        }
    }
}

/// The stream a connection turned out to carry, once its header was read and claimed.
struct Claimed {
    report: tokio::sync::oneshot::Sender<BackendReport>,
}

async fn serve(
    mut stream: TcpStream,
    index: usize,
    ctx: Arc<Ctx>,
    mut kill: watch::Receiver<bool>,
    _live: LiveGuard,
) {
    let _ = stream.set_nodelay(true);
    let mut st = SideState::default();
    let mut claimed = None;
    let progress = Progress::new(ctx.clock);
    let end = tokio::select! {
        biased;
        _ = kill.changed() => Some(End::Killed),
        end = play(&mut stream, index, &ctx, &mut st, &mut claimed, &progress) => end,
    };
    // A stall whose reset the kernel dropped is told apart (see `snapshot`).
    let end = end.map(|end| snapshot::classify(end, &stream, "backend"));
    match end {
        // A side that gave up (or was killed, or resets on purpose) aborts: a FIN would tell
        // the other side that its stream ended well.
        Some(End::Killed | End::ResetByUs | End::Cut { .. }) => side::reset(stream),
        _ => drop(stream),
    }
    match (end, claimed) {
        (Some(end), Some(c)) => {
            let side = st.outcome(end, &progress);
            let _ = c.report.send(BackendReport {
                backend: index,
                side,
            });
        }
        (Some(End::Killed), None) => ctx.registry.note_cut_before_header(),
        _ => {}
    }
}

/// Reads the header, claims the stream and plays the backend's side of its plan; `None` when
/// the connection carried no stream (the registry has been told why).
async fn play(
    stream: &mut TcpStream,
    index: usize,
    ctx: &Ctx,
    st: &mut SideState,
    claimed: &mut Option<Claimed>,
    progress: &Progress,
) -> Option<End> {
    let reg = &ctx.registry;
    let mut buf = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match tokio::time::timeout(ctx.no_progress, stream.read(&mut buf[got..])).await {
            Ok(Ok(0)) if got == 0 => {
                reg.note_empty();
                return None;
            }
            Ok(Ok(0)) => {
                reg.note_bad(format!(
                    "backend {index}: clean EOF after {got} header bytes"
                ));
                return None;
            }
            Ok(Ok(n)) => got += n,
            Ok(Err(_)) => {
                reg.note_cut_before_header();
                return None;
            }
            Err(_) => {
                reg.note_bad(format!("backend {index}: no header after {got} bytes"));
                return None;
            }
        }
    }
    let header = match Header::decode(&buf) {
        Ok(h) => h,
        Err(e) => {
            reg.note_bad(format!("backend {index}: {e}"));
            return None;
        }
    };
    let Some(claim) = reg.claim(header.id, index) else {
        reg.note_bad(format!(
            "backend {index}: stream {} unknown or claimed",
            header.id
        ));
        return None;
    };
    progress.join(claim.clock);
    *claimed = Some(Claimed {
        report: claim.report,
    });
    let _ = ctx.go.clone().wait_for(|go| *go).await;
    progress.restart();
    let plan = Plan::derive(&header);
    let script = Script {
        write: plan.down,
        gate: plan.backend_gate,
        reset_at: plan.backend_reset_at,
        stall: None,
        echo: plan.echo,
    };
    let ready = std::future::ready(());
    Some(side::run(stream, &script, st, progress, ctx.no_progress, ready).await)
}
