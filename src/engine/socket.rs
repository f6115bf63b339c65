//! Socket setup for listeners and relayed streams (socket2; no `unsafe` here).
//!
//! Failures to tune an accepted socket are logged, never fatal: the bytes still flow.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};

/// TCP_NODELAY (token streams are small writes) and SO_KEEPALIVE on a relayed socket. The
/// kernel's keepalive timing is left alone: two syscalls per socket instead of four on the
/// connection-rate path, and `idle_timeout` already ends streams whose peer vanished.
pub fn tune_stream(fd: &impl AsFd) {
    let s = SockRef::from(fd);
    if let Err(e) = s.set_tcp_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
    if let Err(e) = s.set_keepalive(true) {
        tracing::debug!(error = %e, "SO_KEEPALIVE");
    }
}

/// A non-blocking, tuned socket for a connect to `addr`.
pub fn backend_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    tune_stream(&s);
    Ok(s.into())
}

/// Makes the next close send RST instead of FIN: used to pass a reset on to the other peer.
pub fn set_linger_zero(fd: &impl AsFd) {
    if let Err(e) = SockRef::from(fd).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(error = %e, "SO_LINGER");
    }
}

/// One worker's SO_REUSEPORT listening socket on `addr`. TCP_NODELAY and SO_KEEPALIVE are set
/// here because accepted sockets inherit them: no setsockopt per accepted client.
pub fn listener(addr: SocketAddr, backlog: u32) -> io::Result<OwnedFd> {
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    tune_stream(&s);
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(s.into())
}

/// Binds `addr` once and closes the socket again: did anyone else hold it? SO_REUSEADDR as on
/// the workers' sockets (a previous run's connections in TIME_WAIT do not count); SO_REUSEPORT
/// only if `shared`, so that without it a port another process listens on is EADDRINUSE even
/// when that process set SO_REUSEPORT too. Never listens: no client can land on it.
pub fn probe(addr: SocketAddr, shared: bool) -> io::Result<()> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
    s.set_reuse_address(true)?;
    if shared {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())
}

/// The address a listener is bound to (resolves port 0).
pub fn local_addr(fd: &impl AsFd) -> io::Result<SocketAddr> {
    SockRef::from(fd)
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no inet address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_nodelay_and_keepalive_from_the_listener() {
        let l = listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = local_addr(&l).unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let l: Socket = l.into();
        l.set_nonblocking(false).unwrap();
        let (accepted, _) = l.accept().unwrap();
        assert!(accepted.tcp_nodelay().unwrap());
        assert!(accepted.keepalive().unwrap());
    }
}
