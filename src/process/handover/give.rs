//! The old process's side of a hand-over, on a thread of its own (`ringlb-handover`): accept
//! on the hand-over socket, lend every listening socket to the process that asks, and once it
//! says `taken`, stop accepting and drain exactly as on SIGTERM, reporting the live streams
//! per backend every [`COUNTS_EVERY`] until this process exits.
//!
//! One hand-over at a time; one that fails before `taken` (the new process died, timed out,
//! spoke another protocol) changes nothing here and the next may come. Must never change the
//! engine before `taken`, and never hold a lent socket past the session: a listener a worker
//! closes must really close.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::admin::AdminServer;
use crate::engine::{EngineHandover, Observer};

use super::super::Reloader;
use super::endpoint::Endpoint;
use super::wire::{Conn, Msg, Offered, PoolCounts, FDS_PER_MSG, PROTO};
use super::{HandoverError, COUNTS_EVERY, STEP_TIMEOUT};

/// One listener's lent sockets: its index, its address, (worker, socket) in worker order.
type Lent = (usize, SocketAddr, Vec<(usize, OwnedFd)>);

/// Longest wait for every worker to lend its sockets (each answers at its next loop turn).
const LEND_WITHIN: Duration = Duration::from_secs(5);

/// What the serving thread needs of the running process.
pub struct GiveCtx {
    pub engine: EngineHandover,
    pub observer: Observer,
    pub reloader: Arc<Reloader>,
    /// Closed when the new process takes the admin socket over.
    pub admin: Arc<Mutex<Option<AdminServer>>>,
}

/// The serving thread; dropping it stops the thread (and the reports).
pub struct Giver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Giver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves hand-overs on `endpoint` until one is taken, then reports counts.
pub fn serve(endpoint: Endpoint, ctx: GiveCtx) -> std::io::Result<Giver> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ringlb-handover".into())
        .spawn(move || run(endpoint, &ctx, &flag))?;
    Ok(Giver {
        stop,
        thread: Some(thread),
    })
}

fn run(mut endpoint: Endpoint, ctx: &GiveCtx, stop: &AtomicBool) {
    let conn = loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match endpoint.accept() {
            Ok(None) => continue,
            Ok(Some(s)) => match session(ctx, Conn::new(s)) {
                Ok(Some(conn)) => break conn,
                Ok(None) => {} // closed before a hello: a start checking the socket is live
                Err(e) => {
                    tracing::warn!(error = %e, "hand-over abandoned; this process serves on as before")
                }
            },
            Err(e) => {
                tracing::warn!(path = %endpoint.path().display(), error = %e, "hand-over socket: accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    // Ours no more: the new process puts its own socket at the path.
    endpoint.keep_file();
    drop(endpoint);
    report(ctx, &conn, stop);
}

/// One hand-over, up to `taken` and the drain it starts; the connection, to report on. None
/// if the peer closed without a word.
fn session(ctx: &GiveCtx, mut conn: Conn) -> Result<Option<Conn>, HandoverError> {
    conn.set_timeout(Some(STEP_TIMEOUT))
        .map_err(HandoverError::Io)?;
    let refuse = |conn: &Conn, reason: String| {
        let _ = conn.send(
            &Msg::Refused {
                reason: reason.clone(),
            },
            &[],
        );
        HandoverError::Refused {
            pid: std::process::id(),
            reason,
        }
    };
    let hello = match conn.recv() {
        Err(HandoverError::Closed) => return Ok(None),
        other => other?.0,
    };
    let new_pid = match hello {
        Msg::Hello { proto, pid, .. } if proto == PROTO => pid,
        Msg::Hello { proto, version, .. } => {
            return Err(refuse(
                &conn,
                format!("ringlb {version} speaks hand-over protocol {proto}, this one {PROTO}"),
            ))
        }
        other => {
            return Err(HandoverError::Protocol(format!(
                "expected hello, got {other:?}"
            )))
        }
    };
    let lent = ctx
        .engine
        .lend(LEND_WITHIN)
        .map_err(|e| refuse(&conn, e.to_string()))?;
    // By listener (lent is ordered by listener, then worker).
    let mut groups: Vec<Lent> = Vec::new();
    for l in lent {
        match groups.last_mut() {
            Some((index, _, fds)) if *index == l.index => fds.push((l.worker, l.fd)),
            _ => groups.push((l.index, l.addr, vec![(l.worker, l.fd)])),
        }
    }
    let offered: Vec<Offered> = groups
        .iter()
        .map(|(index, addr, fds)| {
            let (name, bind) = ctx
                .reloader
                .listener(*index)
                .unwrap_or_else(|| (format!("#{index}"), *addr));
            Offered {
                name,
                bind,
                addr: *addr,
                sockets: fds.len(),
            }
        })
        .collect();
    let admin = ctx.admin.lock().as_ref().and_then(|a| match a.lend() {
        Ok(fd) => Some((a.addr(), fd)),
        Err(e) => {
            tracing::warn!(error = %e, "hand-over: the admin socket cannot be lent; the new process binds its own");
            None
        }
    });
    let sockets: usize = groups.iter().map(|(_, _, fds)| fds.len()).sum();
    tracing::info!(
        pid = new_pid,
        sockets,
        listeners = groups.len(),
        "hand-over: handing over sockets"
    );
    conn.send(
        &Msg::Offer {
            pid: std::process::id(),
            listeners: offered,
            admin: admin.as_ref().map(|(addr, _)| *addr),
            counts: counts(&ctx.observer),
        },
        &[],
    )?;
    for (pos, (_, _, fds)) in groups.iter().enumerate() {
        for chunk in fds.chunks(FDS_PER_MSG) {
            let borrowed: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
            let msg = Msg::Sockets {
                listener: Some(pos),
                count: chunk.len(),
            };
            conn.send(&msg, &borrowed)?;
        }
    }
    if let Some((_, fd)) = &admin {
        conn.send(
            &Msg::Sockets {
                listener: None,
                count: 1,
            },
            &[fd.as_fd()],
        )?;
    }
    drop(admin);
    // The new process starts its workers on them now; nothing has changed here yet.
    let (taken, took_admin) = match conn.recv()?.0 {
        Msg::Taken {
            listeners, admin, ..
        } => (listeners, admin),
        other => {
            return Err(HandoverError::Protocol(format!(
                "expected taken, got {other:?}"
            )))
        }
    };
    let mut pairs = Vec::new();
    for (pos, n) in taken {
        let Some((index, _, fds)) = groups.get(pos).filter(|(_, _, fds)| n <= fds.len()) else {
            return Err(HandoverError::Protocol(format!(
                "taken names {n} sockets of offered listener {pos}, which has fewer"
            )));
        };
        pairs.extend(fds[..n].iter().map(|(worker, _)| (*index, *worker)));
    }
    drop(groups); // our copies: a socket the new process did not take closes with its worker's
    if took_admin {
        drop(ctx.admin.lock().take());
    }
    let taken_sockets = pairs.len();
    tracing::info!(
        pid = new_pid,
        sockets = taken_sockets,
        admin = took_admin,
        "hand-over: taken; this process stops accepting"
    );
    ctx.engine
        .handed_over(pairs, ctx.reloader.shutdown_timeout());
    let streams = ctx.observer.admitted();
    tracing::info!(streams, shutdown_timeout = ?ctx.reloader.shutdown_timeout(), "hand-over: draining streams");
    if let Err(e) = conn.send(&Msg::Draining { streams }, &[]) {
        tracing::warn!(error = %e, "hand-over: cannot tell the new process; draining anyway");
    }
    Ok(Some(conn))
}

/// Sends the live counts every [`COUNTS_EVERY`] until stopped or the new process is gone.
fn report(ctx: &GiveCtx, conn: &Conn, stop: &AtomicBool) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next {
            if let Err(e) = conn.send(
                &Msg::Counts {
                    pools: counts(&ctx.observer),
                },
                &[],
            ) {
                tracing::info!(error = %e, "hand-over: the new process closed the connection; no more counts");
                return;
            }
            next = now + COUNTS_EVERY;
        }
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
}

/// This process's live streams per backend (its own counts only, never foreign ones).
fn counts(observer: &Observer) -> Vec<PoolCounts> {
    observer
        .table()
        .load_full()
        .snapshot(crate::clock::now_ms())
        .into_iter()
        .map(|p| PoolCounts {
            pool: p.name,
            backends: p.backends.iter().map(|b| (b.addr, b.active)).collect(),
        })
        .collect()
}
