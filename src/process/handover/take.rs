//! The new process's side of a hand-over (`ringlb run --take-over`): connect to the socket its
//! config names, receive the old process's listening sockets and match them to its own
//! listeners ([`take`]); once its workers accept on them, say `taken` and wait for the old one
//! to drain ([`Taking::finish`]); from then on apply the old process's live counts to the
//! table as each backend's foreign count, and clear them when it is gone.
//!
//! A listener matches an offered one with the same address, or, for a port 0 in the config,
//! the same name and the same configured bind. Must never say `taken` before every worker
//! accepts, and never keep a socket it does not accept on (the old process drains those).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::balance::SharedTable;
use crate::config::{Config, Listener};
use crate::engine::{InheritedListener, Server};

use super::endpoint::{self, Endpoint};
use super::wire::{Conn, Msg, Offered, PoolCounts, PROTO};
use super::{HandoverError, STEP_TIMEOUT};

/// Longest wait for the new workers' first loop turn.
const ACCEPTING_WITHIN: Duration = Duration::from_secs(10);

/// A hand-over received and not yet taken.
pub struct Taking {
    conn: Conn,
    path: PathBuf,
    old_pid: u32,
    /// (offered listener, sockets taken), for `taken`.
    plan: Vec<(usize, usize)>,
    took_admin: bool,
    counts: Vec<PoolCounts>,
    /// Workers of this process, each with a socket per listener.
    workers: usize,
}

/// What a hand-over brings for the start: the listening sockets per listener of `cfg`, and
/// the admin API's socket if `cfg` listens on the same admin address.
pub type Received = (Taking, Vec<InheritedListener>, Option<TcpListener>);

/// Connects to the running process named by `cfg` (read from `file`) and receives its sockets.
pub fn take(cfg: &Config, file: &Path) -> Result<Received, HandoverError> {
    let path = cfg
        .runtime
        .handover_socket
        .clone()
        .ok_or_else(|| HandoverError::NotConfigured(file.to_path_buf()))?;
    let mut conn = Conn::new(endpoint::connect(&path)?);
    conn.set_timeout(Some(STEP_TIMEOUT))
        .map_err(HandoverError::Io)?;
    let hello = Msg::Hello {
        proto: PROTO,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    conn.send(&hello, &[])?;
    let (old_pid, offered, admin, counts) = match conn.recv()?.0 {
        Msg::Offer {
            pid,
            listeners,
            admin,
            counts,
        } => (pid, listeners, admin, counts),
        Msg::Refused { reason } => return Err(HandoverError::Refused { pid: 0, reason }),
        other => {
            return Err(HandoverError::Protocol(format!(
                "expected offer, got {other:?}"
            )))
        }
    };
    let (mut sockets, admin_fd) = receive(&mut conn, &offered, admin.is_some())?;
    let workers = cfg.runtime.workers.max(1);
    let mut inherited = Vec::new();
    let mut plan = Vec::new();
    for (index, l) in cfg.listeners.iter().enumerate() {
        let unused = |i: &usize| !plan.iter().any(|(p, _)| p == i);
        let Some(i) = (0..offered.len())
            .filter(unused)
            .find(|&i| matches(l, &offered[i]))
        else {
            continue;
        };
        let n = workers.min(sockets[i].len());
        let fds: Vec<OwnedFd> = sockets[i].drain(..n).collect();
        inherited.push(InheritedListener {
            index,
            addr: offered[i].addr,
            fds,
        });
        plan.push((i, n));
    }
    for (i, o) in offered.iter().enumerate() {
        if !plan.iter().any(|(p, _)| *p == i) {
            tracing::info!(listener = %o.name, addr = %o.addr, "hand-over: not in the new config; the old process drains it");
        }
    }
    let admin_listener = match (admin, admin_fd, &cfg.admin) {
        (Some(at), Some(fd), Some(a)) if a.bind == at => Some(TcpListener::from(fd)),
        _ => None,
    };
    let taking = Taking {
        conn,
        path,
        old_pid,
        plan,
        took_admin: admin_listener.is_some(),
        counts,
        workers,
    };
    Ok((taking, inherited, admin_listener))
}

/// Whether the new config's listener `l` is the offered one.
fn matches(l: &Listener, o: &Offered) -> bool {
    if l.bind.port() != 0 {
        o.addr == l.bind
    } else {
        o.name == l.name && o.bind == l.bind
    }
}

/// Every `sockets` message of the offer: the sockets per offered listener, checked against
/// the counts offered and the addresses they are bound to, and the admin socket.
fn receive(
    conn: &mut Conn,
    offered: &[Offered],
    admin: bool,
) -> Result<(Vec<Vec<OwnedFd>>, Option<OwnedFd>), HandoverError> {
    let mut got: Vec<Vec<OwnedFd>> = offered.iter().map(|_| Vec::new()).collect();
    let mut admin_fd = None;
    let mut left: usize = offered.iter().map(|o| o.sockets).sum::<usize>() + usize::from(admin);
    while left > 0 {
        let (msg, mut fds) = conn.recv()?;
        let Msg::Sockets { listener, count } = msg else {
            return Err(HandoverError::Protocol(format!(
                "expected sockets, got {msg:?}"
            )));
        };
        let what = listener
            .and_then(|i| offered.get(i))
            .map_or("the admin API".to_string(), |o| {
                format!("listener {:?}", o.name)
            });
        if fds.len() != count || count > left {
            return Err(HandoverError::FdCount {
                what,
                expected: count.min(left),
                got: fds.len(),
            });
        }
        left -= count;
        match listener {
            Some(i) if i < offered.len() => {
                for fd in &fds {
                    let at = socket2::SockRef::from(fd)
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_socket());
                    if at != Some(offered[i].addr) {
                        return Err(HandoverError::Protocol(format!(
                            "a socket of {what} is bound to {at:?}, not {}",
                            offered[i].addr
                        )));
                    }
                }
                got[i].append(&mut fds);
                if got[i].len() > offered[i].sockets {
                    return Err(HandoverError::FdCount {
                        what,
                        expected: offered[i].sockets,
                        got: got[i].len(),
                    });
                }
            }
            None if admin && admin_fd.is_none() && count == 1 => admin_fd = fds.pop(),
            _ => {
                return Err(HandoverError::Protocol(format!(
                    "unexpected sockets for {what}"
                )))
            }
        }
    }
    Ok((got, admin_fd))
}

impl Taking {
    /// `server` runs on the sockets received: once its workers accept, says `taken`, waits for
    /// the old process to drain, and from then on applies its counts. Returns this process's
    /// own hand-over socket (None if it cannot be made: then it cannot be taken over).
    pub fn finish(mut self, server: &Server) -> Result<Option<Endpoint>, HandoverError> {
        let table = server.table().clone();
        apply(&table, &self.counts);
        if !server.wait_accepting(ACCEPTING_WITHIN) {
            return Err(HandoverError::NotAccepting(ACCEPTING_WITHIN));
        }
        let taken = Msg::Taken {
            pid: std::process::id(),
            listeners: self.plan.clone(),
            admin: self.took_admin,
        };
        self.conn.send(&taken, &[])?;
        let old_streams = match self.conn.recv()?.0 {
            Msg::Draining { streams } => streams,
            other => {
                return Err(HandoverError::Protocol(format!(
                    "expected draining, got {other:?}"
                )))
            }
        };
        let (pid, sockets) = (
            self.old_pid,
            self.plan.iter().map(|(_, n)| n).sum::<usize>(),
        );
        let bound = (server.listeners().len() * self.workers).saturating_sub(sockets);
        tracing::info!(
            pid,
            sockets,
            bound,
            admin = self.took_admin,
            old_streams,
            "hand-over: took {sockets} sockets from pid {pid}, bound {bound} more"
        );
        let endpoint = match Endpoint::replace(&self.path) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "this process cannot be taken over in turn");
                None
            }
        };
        let Taking { conn, old_pid, .. } = self;
        let spawned = std::thread::Builder::new()
            .name("ringlb-handover-counts".into())
            .spawn(move || follow(conn, &table, old_pid));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "hand-over: the old process's counts are not followed");
        }
        Ok(endpoint)
    }
}

/// Applies every `counts` report until the old process is gone, then clears them.
fn follow(mut conn: Conn, table: &Arc<SharedTable>, old_pid: u32) {
    loop {
        match conn.recv() {
            Ok((Msg::Counts { pools }, _)) => apply(table, &pools),
            Ok((other, _)) => {
                tracing::warn!(msg = ?other, "hand-over: unexpected message from the old process");
            }
            Err(e) => {
                table.load_full().set_foreign(|_, _| 0);
                tracing::info!(pid = old_pid, reason = %e, "hand-over: the old process is gone; its counts are cleared");
                return;
            }
        }
    }
}

fn apply(table: &SharedTable, pools: &[PoolCounts]) {
    let by: HashMap<(&str, SocketAddr), u32> = pools
        .iter()
        .flat_map(|p| {
            p.backends
                .iter()
                .map(move |(a, n)| ((p.pool.as_str(), *a), *n))
        })
        .collect();
    table
        .load_full()
        .set_foreign(|pool, addr| by.get(&(pool, addr)).copied().unwrap_or(0));
}
