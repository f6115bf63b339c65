//! One check of one backend: connect, then the check's own exchange (`probe_http`,
//! `probe_ws`), all under the check's timeout. The result is pass, or a [`ProbeError`] that
//! says why in words for the log and in a [`CheckFailure`] for the table.
//!
//! A probe must never outlive its timeout, never read more than a bounded answer, and never
//! panic on what a backend sends.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::balance::{CheckFailure, Probe};

use super::{probe_http, probe_ws};

/// Why one check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect refused")]
    Refused,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("status {status}, expected one of {expected:?}")]
    Status { status: u16, expected: Vec<u16> },
    #[error("websocket handshake refused with status {0}")]
    Upgrade(u16),
    #[error("body does not contain {0:?}")]
    Body(String),
    #[error("connection closed before a complete answer")]
    Closed,
    #[error("bad answer: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(io::Error),
}

impl ProbeError {
    /// The compact reason the table keeps.
    pub fn failure(&self) -> CheckFailure {
        match self {
            ProbeError::Refused => CheckFailure::Refused,
            ProbeError::Timeout(_) => CheckFailure::Timeout,
            ProbeError::Status { status, .. } | ProbeError::Upgrade(status) => {
                CheckFailure::Status(*status)
            }
            ProbeError::Body(_) => CheckFailure::Body,
            ProbeError::Closed => CheckFailure::Closed,
            ProbeError::Protocol(_) => CheckFailure::Protocol,
            ProbeError::Io(_) => CheckFailure::Io,
        }
    }
}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ProbeError::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ProbeError::Closed,
            _ => ProbeError::Io(e),
        }
    }
}

/// Runs one check of `probe` against `addr`; whatever is not done within `timeout` fails.
pub async fn probe(addr: SocketAddr, probe: &Probe, timeout: Duration) -> Result<(), ProbeError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        // Health answers are tiny: do not let Nagle hold the request back.
        let _ = stream.set_nodelay(true);
        match probe {
            Probe::Tcp => Ok(()),
            Probe::Http {
                path,
                expect_status,
                expect_body,
            } => {
                probe_http::check(
                    &mut stream,
                    addr,
                    path,
                    expect_status,
                    expect_body.as_deref(),
                )
                .await
            }
            Probe::WebSocket { path } => probe_ws::check(stream, addr, path).await,
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}
