//! Errors of the soak driver: a run that cannot start or finish. A failed *check* is not an
//! error (it is a verdict in the report); these are the reasons there is no report at all.
//! Must never hide its cause: every variant names what it was doing and carries the source.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a soak run could not happen (or could not be written down).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot create the work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind backend {index} on {addr}: {source}")]
    BindBackend {
        index: usize,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {path}: {source}")]
    SpawnRingLb {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ringlb did not become ready: {reason}")]
    NotReady { reason: String },
    #[error("cannot read /proc/{pid}/{what}: {source}")]
    Proc {
        pid: u32,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("bad stream header: {0}")]
    Header(&'static str),
    #[error("cannot serialize the report: {0}")]
    Serialize(#[from] serde_json::Error),
}
