//! Binding the listeners, and refusing a port another process already listens on.
//!
//! Every worker binds its own SO_REUSEPORT socket, and the kernel lets any process of the same
//! user join such a group: a second `ringlb run` on the same address would start without a
//! word and take half the traffic. So before the workers bind a fixed port, it is bound once
//! without SO_REUSEPORT and closed again (see `socket::probe`): EADDRINUSE there means someone
//! else holds it, and start fails naming the listener and the address. Port 0 is not probed:
//! the first worker's socket picks the port and the others join it, as before. A deliberate
//! hand-over (the new process given the old one's sockets, [`StartOptions::inherited`]) skips
//! the probe for those listeners, and its workers beyond the sockets received join them. This
//! module must never leave a probe socket open.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::config::{Config, Listener};

use super::handover::InheritedListener;
use super::socket;
use super::time::Clock;
use super::worker::{Accept, WorkerListener};
use super::EngineError;

/// How [`super::Server::start_with_options`] starts.
pub struct StartOptions {
    /// What the engine's timers run on.
    pub clock: Clock,
    /// Refuse a fixed listener port that another process already listens on (probe it without
    /// SO_REUSEPORT first). On by default. A listener in `inherited` is never probed.
    pub probe_ports: bool,
    /// A hand-over: sockets received from the process taken over, per listener of the config.
    /// Workers past the sockets received bind their own and join them (SO_REUSEPORT).
    pub inherited: Vec<InheritedListener>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            clock: Clock::system(),
            probe_ports: true,
            inherited: Vec::new(),
        }
    }
}

/// Each worker's listening sockets, indexed by worker id.
pub(super) type PerWorker = Vec<Vec<WorkerListener>>;

/// Every worker's listening sockets for every listener of `config`, and where each listener
/// is bound: from `inherited` where it has the listener (binding only what workers it lacks),
/// else bound here (probing a fixed port first if `probe`).
pub(super) fn worker_listeners(
    config: &Config,
    workers: usize,
    probe: bool,
    mut inherited: Vec<InheritedListener>,
) -> Result<(PerWorker, Vec<(String, SocketAddr)>), EngineError> {
    let mut per_worker: PerWorker = (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for (index, l) in config.listeners.iter().enumerate() {
        let (addr, fds) = match inherited.iter().position(|h| h.index == index) {
            Some(at) => joined_sockets(l, inherited.swap_remove(at), workers)?,
            None => listener_sockets(l, workers, probe)?,
        };
        for (w, fd) in fds.into_iter().enumerate() {
            per_worker[w].push(WorkerListener {
                fd: Some(fd),
                pool: l.pool,
                index,
                accept: Accept::Off,
                retry_at: 0,
                closing: false,
                handed_over: false,
            });
        }
        bound.push((l.name.clone(), addr));
    }
    Ok((per_worker, bound))
}

/// `workers` sockets for `l` from the ones a hand-over brought (at most one per worker; any
/// more are closed here) and new ones joining their address.
fn joined_sockets(
    l: &Listener,
    inherited: InheritedListener,
    workers: usize,
) -> Result<(SocketAddr, Vec<OwnedFd>), EngineError> {
    let addr = inherited.addr;
    let mut fds = inherited.fds;
    fds.truncate(workers);
    while fds.len() < workers {
        let fd = socket::listener(addr, l.backlog).map_err(|error| EngineError::Listen {
            name: l.name.clone(),
            addr,
            error,
        })?;
        fds.push(fd);
    }
    Ok((addr, fds))
}

/// What trying a bind found (see [`try_bind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindCheck {
    /// Nobody holds the address: `ringlb run` can listen there.
    Free,
    /// A SO_REUSEPORT socket of this user holds it (most likely a running ringlb): `ringlb run`
    /// would refuse it, a reload of that process would not.
    Shared,
}

/// Binds `addr` once (and releases it) the way `ringlb run` would, for `ringlb check`.
pub fn try_bind(addr: SocketAddr) -> io::Result<BindCheck> {
    match socket::probe(addr, false) {
        Ok(()) => Ok(BindCheck::Free),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => match socket::probe(addr, true) {
            Ok(()) => Ok(BindCheck::Shared),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Why a bind of `addr` failed, in words an operator acts on (no errno numbers).
pub fn bind_reason(addr: SocketAddr, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "another process listens there (address in use)".into(),
        io::ErrorKind::PermissionDenied if addr.port() != 0 && addr.port() < 1024 => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".into()
        }
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::AddrNotAvailable => {
            "no interface of this host has that address (address not available)".into()
        }
        _ => error.to_string(),
    }
}

/// Every worker's listening socket for `l`, and the address they are bound to (port 0
/// resolved by the first socket). With `probe`, a fixed port is first checked to be free.
pub(super) fn listener_sockets(
    l: &Listener,
    workers: usize,
    probe: bool,
) -> Result<(SocketAddr, Vec<OwnedFd>), EngineError> {
    let listen_err = |addr, error| EngineError::Listen {
        name: l.name.clone(),
        addr,
        error,
    };
    if probe && l.bind.port() != 0 {
        socket::probe(l.bind, false).map_err(|e| listen_err(l.bind, e))?;
    }
    let first = socket::listener(l.bind, l.backlog).map_err(|e| listen_err(l.bind, e))?;
    let addr = socket::local_addr(&first).map_err(|e| listen_err(l.bind, e))?;
    let mut fds: Vec<OwnedFd> = vec![first];
    for _ in 1..workers {
        fds.push(socket::listener(addr, l.backlog).map_err(|e| listen_err(addr, e))?);
    }
    Ok((addr, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(bind: SocketAddr) -> Listener {
        Listener {
            name: "api".into(),
            bind,
            pool: 0,
            backlog: 16,
            max_connections: 0,
        }
    }

    #[test]
    fn a_port_held_by_another_reuseport_group_is_refused_unless_handed_over() {
        let any = "127.0.0.1:0".parse().unwrap();
        let (held, _fds) = listener_sockets(&listener(any), 2, true).unwrap();
        let taken = listener_sockets(&listener(held), 2, true).map(|(a, _)| a);
        let msg = taken.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "listener \"api\": cannot listen on {held}: another process listens there \
                 (address in use)"
            )
        );
        assert_eq!(try_bind(held).unwrap(), BindCheck::Shared);
        // A hand-over skips the probe and joins the group.
        let (joined, _more) = listener_sockets(&listener(held), 1, false).unwrap();
        assert_eq!(joined, held);
    }

    #[test]
    fn port_zero_is_resolved_once_and_shared_by_every_worker() {
        let any = "127.0.0.1:0".parse().unwrap();
        let (addr, fds) = listener_sockets(&listener(any), 3, true).unwrap();
        assert_ne!(addr.port(), 0);
        for fd in &fds {
            assert_eq!(socket::local_addr(fd).unwrap(), addr);
        }
        drop(fds);
        assert_eq!(
            try_bind(addr).unwrap(),
            BindCheck::Free,
            "nothing left open"
        );
    }

    #[test]
    fn a_plain_listener_is_refused_and_named() {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        let e = try_bind(addr).unwrap_err();
        assert_eq!(
            bind_reason(addr, &e),
            "another process listens there (address in use)"
        );
        let foreign: SocketAddr = "192.0.2.1:8080".parse().unwrap();
        let e = try_bind(foreign).unwrap_err();
        assert!(bind_reason(foreign, &e).contains("no interface of this host"));
    }
}
