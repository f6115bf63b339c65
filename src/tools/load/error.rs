//! Errors of the load generator: [`LoadError`] for a run that cannot start or finish, and
//! [`RequestError`] for one failed request, which is counted in the report and never aborts the
//! run. Must never lose a failure: every failed request maps to exactly one [`ErrorKind`].

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a whole run could not start or finish (bad options, unresolvable target, I/O on the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("cannot resolve target {target}: {source}")]
    Resolve {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("target {target} resolved to no address")]
    NoAddress { target: String },
    #[error("cannot create a latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("a load worker died: {0}")]
    Worker(String),
    #[error("cannot write the JSON report to {path}: {source}")]
    WriteJson {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the request log {path}: {source}")]
    WriteRequestLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize the report: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The kinds of request failure the report breaks errors down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection (TCP, or the WebSocket handshake) could not be established.
    Connect,
    /// The request did not finish within `--timeout`.
    Timeout,
    /// The peer answered something we could not parse or did not expect (status, framing).
    Protocol,
    /// The peer closed or reset the connection before the response was complete.
    Closed,
    /// An echo came back different from what was sent.
    Mismatch,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
            ErrorKind::Mismatch => "mismatch",
        })
    }
}

/// One failed request: its kind, and a human-readable detail for the error samples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct RequestError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl RequestError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        RequestError {
            kind,
            detail: detail.into(),
        }
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, detail)
    }

    pub fn closed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Closed, detail)
    }

    /// An I/O error on an established connection: whatever the errno, the stream is gone.
    pub fn io(what: &str, err: &std::io::Error) -> Self {
        Self::closed(format!("{what}: {err}"))
    }
}

/// Failed requests per kind, as written in the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub total: u64,
    pub connect: u64,
    pub timeout: u64,
    pub protocol: u64,
    pub closed: u64,
    pub mismatch: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        self.total += 1;
        let slot = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Protocol => &mut self.protocol,
            ErrorKind::Closed => &mut self.closed,
            ErrorKind::Mismatch => &mut self.mismatch,
        };
        *slot += 1;
    }
}
