//! One side of a soak stream (the client's socket or the backend's): write its pattern paced,
//! read and hash what comes, wait for the other side's EOF where the plan says, reset where it
//! says, stall reading where it says; give up when nothing moved for the no-progress limit.
//! Must never count a byte as sent before the kernel took it, nor let a failure pass as a
//! completed side.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::outcome::{failure, Cause, End, Failure, SideState};
use super::pattern::{fill, Hashing, CHUNK};
use super::plan::{Flow, Pacer, Stall};

/// When a side last moved a byte, shared by its reader and writer, and the longest it waited.
pub struct Progress {
    base: Instant,
    last_ns: AtomicU64,
    max_gap_ns: AtomicU64,
    /// The last byte either side of the stream moved: the no-progress limit is about the
    /// stream, not one side (a client that sent everything waits, rightly, while a backend
    /// slowed by a busy driver is still reading its upload).
    stream_ns: Arc<AtomicU64>,
    /// The client's clock, once a backend has claimed the stream (see [`Progress::join`]).
    joined: OnceLock<Arc<AtomicU64>>,
}

impl Progress {
    /// `base` is the run's clock: cut times are reported as milliseconds since it.
    pub fn new(base: Instant) -> Progress {
        let p = Progress {
            base,
            last_ns: AtomicU64::new(0),
            max_gap_ns: AtomicU64::new(0),
            stream_ns: Arc::new(AtomicU64::new(0)),
            joined: OnceLock::new(),
        };
        p.restart();
        p
    }

    /// The stream-wide clock, for the other side to [`join`](Progress::join).
    pub fn stream(&self) -> Arc<AtomicU64> {
        self.stream_ns.clone()
    }

    /// From now on this side counts towards (and waits on) the other side's stream clock.
    pub fn join(&self, stream: Arc<AtomicU64>) {
        let now = self.base.elapsed().as_nanos() as u64;
        stream.fetch_max(now, Ordering::Relaxed);
        let _ = self.joined.set(stream);
    }

    fn stream_clock(&self) -> &AtomicU64 {
        self.joined.get().unwrap_or(&self.stream_ns)
    }

    /// A byte moved: the wait since the last one counts towards the longest wait.
    pub fn touch(&self) {
        let now = self.base.elapsed().as_nanos() as u64;
        let last = self.last_ns.swap(now, Ordering::Relaxed);
        self.stream_clock().fetch_max(now, Ordering::Relaxed);
        self.max_gap_ns
            .fetch_max(now.saturating_sub(last), Ordering::Relaxed);
    }

    /// Starts counting from now, without a wait (the stream starts moving only now).
    pub fn restart(&self) {
        let now = self.base.elapsed().as_nanos() as u64;
        self.last_ns.store(now, Ordering::Relaxed);
        self.stream_clock().fetch_max(now, Ordering::Relaxed);
    }

    /// The longest wait for a byte so far, in milliseconds.
    pub fn max_gap_ms(&self) -> u64 {
        self.max_gap_ns.load(Ordering::Relaxed) / 1_000_000
    }

    /// Time since either side of the stream last moved a byte.
    fn idle(&self) -> Duration {
        let now = self.base.elapsed().as_nanos() as u64;
        Duration::from_nanos(now.saturating_sub(self.stream_clock().load(Ordering::Relaxed)))
    }

    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }
}

/// What this side writes, and what it does while reading.
pub struct Script {
    pub write: Flow,
    /// Write this many bytes, then wait for the peer's EOF before the rest.
    pub gate: Option<u64>,
    pub reset_at: Option<u64>,
    pub stall: Option<Stall>,
    /// Write back what is read instead of `write` (the echo backend).
    pub echo: bool,
}

enum WriteEnd {
    Fin,
    Reset,
}

/// Writes all of `bytes`, counting each piece as sent as soon as the kernel took it.
async fn write_counted(
    w: &mut WriteHalf<'_>,
    bytes: &[u8],
    sent: &mut Hashing,
    progress: &Progress,
) -> Result<(), Failure> {
    let mut at = 0;
    while at < bytes.len() {
        match w.write(&bytes[at..]).await {
            Ok(0) => return Err((Cause::Io, "write returned 0".into())),
            Ok(n) => {
                sent.update(&bytes[at..at + n]);
                at += n;
                progress.touch();
            }
            Err(e) => return Err(failure("write", &e)),
        }
    }
    Ok(())
}

async fn write_flow(
    w: &mut WriteHalf<'_>,
    script: &Script,
    sent: &mut Hashing,
    progress: &Progress,
    mut peer_eof: oneshot::Receiver<bool>,
    reset_ready: impl Future<Output = ()>,
) -> Result<WriteEnd, Failure> {
    let flow = script.write;
    let mut pacer = Pacer::new(flow.pacing, flow.pace_seed);
    let mut buf = Vec::new();
    let mut gate = script.gate;
    loop {
        let at = sent.len();
        if gate == Some(at) {
            gate = None;
            if !matches!((&mut peer_eof).await, Ok(true)) {
                return Err((
                    Cause::PeerGone,
                    "read side failed before the peer's EOF".into(),
                ));
            }
        }
        if script.reset_at == Some(at) {
            reset_ready.await;
            return Ok(WriteEnd::Reset);
        }
        if at == flow.len {
            break;
        }
        let limit = [Some(flow.len), gate, script.reset_at]
            .into_iter()
            .flatten()
            .map(|stop| stop - at)
            .min()
            .expect("flow.len is always there");
        let (n, pause) = pacer.step(limit);
        buf.resize(CHUNK, 0);
        fill(flow.pattern, at, &mut buf[..n]);
        write_counted(w, &buf[..n], sent, progress).await?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    w.shutdown().await.map_err(|e| failure("shutdown", &e))?;
    Ok(WriteEnd::Fin)
}

async fn read_flow(
    r: &mut ReadHalf<'_>,
    recv: &mut Hashing,
    mut stall: Option<Stall>,
    progress: &Progress,
    eof: oneshot::Sender<bool>,
) -> Result<(), Failure> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        if let Some(s) = stall.filter(|s| recv.len() >= s.at) {
            stall = None;
            tokio::time::sleep(s.pause).await;
        }
        match r.read(&mut buf).await {
            Ok(0) => {
                let _ = eof.send(true);
                return Ok(());
            }
            Ok(n) => {
                recv.update(&buf[..n]);
                progress.touch();
            }
            Err(e) => {
                let _ = eof.send(false);
                return Err(failure("read", &e));
            }
        }
    }
}

async fn echo_flow(
    stream: &mut TcpStream,
    st: &mut SideState,
    progress: &Progress,
) -> Result<(), Failure> {
    let (mut r, mut w) = stream.split();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).await.map_err(|e| failure("read", &e))?;
        if n == 0 {
            st.read_eof = true;
            w.shutdown().await.map_err(|e| failure("shutdown", &e))?;
            st.wrote_fin = true;
            return Ok(());
        }
        st.recv.update(&buf[..n]);
        progress.touch();
        write_counted(&mut w, &buf[..n], &mut st.sent, progress).await?;
    }
}

/// Fires once nothing has moved on this side for `limit`.
async fn watchdog(progress: &Progress, limit: Duration) {
    loop {
        let idle = progress.idle();
        if idle >= limit {
            return;
        }
        tokio::time::sleep(limit - idle).await;
    }
}

/// Runs `script` on `stream` to its end. At the planned reset point it waits for
/// `reset_ready` (reading on meanwhile, so a cut while waiting is seen as one); on
/// [`End::ResetByUs`] the caller resets the socket.
pub async fn run(
    stream: &mut TcpStream,
    script: &Script,
    st: &mut SideState,
    progress: &Progress,
    no_progress: Duration,
    reset_ready: impl Future<Output = ()>,
) -> End {
    progress.restart();
    let cut = |(cause, detail): Failure| End::Cut {
        cause,
        at_ms: progress.now_ms(),
        detail,
    };
    let timeout = || End::Cut {
        cause: Cause::Timeout,
        at_ms: progress.now_ms(),
        detail: format!("no byte moved for {no_progress:?}"),
    };
    if script.echo {
        return tokio::select! {
            r = echo_flow(stream, st, progress) => r.map_or_else(cut, |()| End::Completed),
            () = watchdog(progress, no_progress) => timeout(),
        };
    }
    let (mut rd, mut wr) = stream.split();
    let (eof_tx, eof_rx) = oneshot::channel();
    let reader = read_flow(&mut rd, &mut st.recv, script.stall, progress, eof_tx);
    let writer = write_flow(&mut wr, script, &mut st.sent, progress, eof_rx, reset_ready);
    let dog = watchdog(progress, no_progress);
    tokio::pin!(reader, writer, dog);
    let (mut read_end, mut write_end) = (None, None);
    loop {
        tokio::select! {
            r = &mut reader, if read_end.is_none() => match r {
                Ok(()) => read_end = Some(()),
                Err(f) => return cut(f),
            },
            w = &mut writer, if write_end.is_none() => match w {
                Ok(WriteEnd::Reset) => return End::ResetByUs,
                Ok(WriteEnd::Fin) => write_end = Some(()),
                Err(f) => return cut(f),
            },
            () = &mut dog => return timeout(),
        }
        st.read_eof = read_end.is_some();
        st.wrote_fin = write_end.is_some();
        if st.read_eof && st.wrote_fin {
            return End::Completed;
        }
    }
}

/// Closes `stream` with SO_LINGER 0, so the peer gets a reset instead of a FIN.
pub fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
