//! Drives a run: resolves the target, starts one task per connection (or the idle holders),
//! hands out tickets from the [`Schedule`], times each request and records it, and stops early
//! when asked. Must never let a request go unrecorded or a worker spin on a dead target.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::echo::Echo;
use super::error::{ErrorKind, LoadError, RequestError};
use super::http::Http;
use super::idle;
use super::options::{LoadOptions, Mode};
use super::progress::Progress;
use super::report::Report;
use super::request_log::RequestLog;
use super::schedule::{Backoff, Schedule};
use super::sse::Sse;
use super::stats::{Sample, Stats};
use super::websocket::Ws;

/// Whether a connection may carry the next request after a successful one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    Keep,
    Close,
}

/// One request/response protocol over a connection (everything but idle).
pub trait Protocol: Send + Sync + 'static {
    type Conn: Send + 'static;

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<Self::Conn, RequestError>> + Send;

    /// Runs one request, filling `sample` as it goes (so partial progress survives a failure).
    fn request(
        &self,
        conn: &mut Self::Conn,
        sample: &mut Sample,
    ) -> impl Future<Output = Result<Reuse, RequestError>> + Send;
}

/// What every connection task of a run shares.
pub struct Ctx {
    pub opts: LoadOptions,
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub schedule: Schedule,
    pub started: Instant,
}

pub async fn execute<F>(opts: LoadOptions, stop: F) -> Result<Report, LoadError>
where
    F: Future<Output = ()>,
{
    opts.validate()?;
    let addr = resolve(&opts.target).await?;
    let mut stats = Stats::new(opts.backend_header.is_some())?;
    if let Some(path) = &opts.request_log {
        stats.log_requests_to(RequestLog::create(path)?);
    }
    let stats = Arc::new(stats);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        opts: opts.clone(),
        addr,
        stats: Arc::clone(&stats),
        schedule: Schedule::new(started, opts.limit, opts.rate),
        started,
    });
    tracing::info!(mode = opts.mode.name(), %addr, connections = opts.connections, "load run starting");
    let progress = Progress::start(&opts, Arc::clone(&stats), started);
    let mut set = JoinSet::new();
    match opts.mode {
        Mode::Sse => spawn_workers(&mut set, Sse::new(&opts), &ctx, &stop_rx),
        Mode::Websocket => spawn_workers(&mut set, Ws::new(&opts), &ctx, &stop_rx),
        Mode::Http => spawn_workers(&mut set, Http::new(&opts), &ctx, &stop_rx),
        Mode::TcpEcho => spawn_workers(&mut set, Echo::new(&opts), &ctx, &stop_rx),
        Mode::Idle => idle::spawn(&mut set, &ctx, &stop_rx),
    }
    let outcome = drive(&mut set, stop, &stop_tx).await;
    let elapsed = started.elapsed();
    progress.finish().await;
    outcome?;
    stats.finish_request_log()?;
    Ok(stats.with_recorder(|rec| Report::build(&opts, rec, elapsed, stats.cancelled())))
}

async fn resolve(target: &str) -> Result<SocketAddr, LoadError> {
    let mut addrs = tokio::net::lookup_host(target)
        .await
        .map_err(|source| LoadError::Resolve {
            target: target.to_string(),
            source,
        })?;
    addrs.next().ok_or_else(|| LoadError::NoAddress {
        target: target.to_string(),
    })
}

/// Waits for every task, telling them to stop when `stop` fires or one of them dies.
async fn drive<F>(
    set: &mut JoinSet<()>,
    stop: F,
    stop_tx: &watch::Sender<bool>,
) -> Result<(), LoadError>
where
    F: Future<Output = ()>,
{
    tokio::pin!(stop);
    let (mut stopping, mut failure) = (false, None);
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::error!(error = %e, "load worker died");
                    failure.get_or_insert_with(|| e.to_string());
                    stopping = true;
                    stop_tx.send_replace(true);
                }
            },
            () = &mut stop, if !stopping => {
                tracing::info!("stop requested; abandoning requests in flight");
                stopping = true;
                stop_tx.send_replace(true);
            }
        }
    }
    failure.map_or(Ok(()), |f| Err(LoadError::Worker(f)))
}

/// Resolves when the run is told to stop (never, if the sender is gone without saying so).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn spawn_workers<P: Protocol>(
    set: &mut JoinSet<()>,
    proto: P,
    ctx: &Arc<Ctx>,
    stop: &watch::Receiver<bool>,
) {
    let proto = Arc::new(proto);
    for _ in 0..ctx.opts.connections {
        set.spawn(worker(Arc::clone(&proto), Arc::clone(ctx), stop.clone()));
    }
}

/// One connection's loop: take a ticket, wait for its time (open loop), run it.
async fn worker<P: Protocol>(proto: Arc<P>, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut conn: Option<P::Conn> = None;
    let mut backoff = Backoff::default();
    while let Some(ticket) = ctx.schedule.next() {
        let mut intended = ticket.intended;
        if let Some(at) = intended.filter(|&at| at > Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                () = stopped(&mut stop) => return,
            }
            // This connection was free before the request was due, so nothing queued: any
            // lateness past `at` is the timer's (1 ms granularity), not the target's.
            intended = Some(Instant::now().max(at));
        }
        let connected = tokio::select! {
            c = one_request(&*proto, &ctx, &mut conn, intended, ticket.seq) => c,
            () = stopped(&mut stop) => {
                ctx.stats.record_cancelled();
                return;
            }
        };
        if connected {
            backoff.reset();
        } else if intended.is_none() {
            tokio::select! {
                () = tokio::time::sleep(backoff.pause()) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }
}

/// Runs one request, connecting first if needed; returns false if the connect failed.
async fn one_request<P: Protocol>(
    proto: &P,
    ctx: &Ctx,
    slot: &mut Option<P::Conn>,
    intended: Option<Instant>,
    seq: u64,
) -> bool {
    let stats = &ctx.stats;
    let timeout = ctx.opts.timeout;
    if ctx.opts.new_connection_per_request {
        *slot = None;
    }
    let conn = match slot {
        Some(conn) => conn,
        None => {
            let began = Instant::now();
            let connected = match tokio::time::timeout(timeout, proto.connect(ctx.addr)).await {
                Ok(result) => result,
                Err(_) => Err(RequestError::new(
                    ErrorKind::Connect,
                    format!("connect timed out after {timeout:?}"),
                )),
            };
            match connected {
                Ok(conn) => {
                    stats.record_connect(began.elapsed());
                    slot.insert(conn)
                }
                Err(err) => {
                    let sample = Sample {
                        started: Some(intended.unwrap_or(began)),
                        ..Sample::default()
                    };
                    stats.record_error(&err, sample);
                    return false;
                }
            }
        }
    };
    let sent = Instant::now();
    if let Some(at) = intended {
        stats.record_queue(sent.saturating_duration_since(at));
    }
    let start = intended.unwrap_or(sent);
    let mut sample = Sample {
        started: Some(start),
        seq,
        ..Sample::default()
    };
    let result = tokio::time::timeout(timeout, proto.request(conn, &mut sample)).await;
    let end = Instant::now();
    match result {
        Ok(Ok(reuse)) => {
            stats.record_ok(start, end, sample);
            if reuse == Reuse::Close {
                *slot = None;
            }
        }
        Ok(Err(err)) => {
            stats.record_error(&err, sample);
            *slot = None;
        }
        Err(_) => {
            let err = RequestError::new(
                ErrorKind::Timeout,
                format!("no complete response within {timeout:?}"),
            );
            stats.record_error(&err, sample);
            *slot = None;
        }
    }
    true
}
