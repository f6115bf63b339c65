//! Hand-over to a new process without dropping a connection (binary upgrade).
//!
//! The running process serves a unix socket (`runtime.handover_socket`, see `endpoint`). A new
//! `ringlb run --take-over` connects to the one its own config names and receives, over
//! SCM_RIGHTS (`wire`), the running process's listening sockets: one per listener and worker,
//! matched to its own listeners by address (by name for a port 0). Its workers accept on them
//! (binding only what the old process lacked: more workers, new listeners); once they are
//! accepting it says `taken`, and the old process stops accepting and drains as on SIGTERM
//! (`give`), reporting its live streams per backend every ~500 ms so that the new process's
//! picks count them (`take`). Until `taken` nothing in the old process has changed: any
//! failure before it leaves the old process serving as it was, and the new one exits.
//!
//! Must never make the old process stop accepting before the new one accepts, never leave a
//! socket in a listen group that nobody accepts on, and never run on a worker.

mod endpoint;
mod give;
mod take;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use endpoint::Endpoint;
pub use give::{serve, GiveCtx, Giver};
pub use take::{take, Taking};

/// How long one step of the exchange may take before the other side is given up on.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a draining old process reports its live streams per backend.
pub const COUNTS_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error(
        "--take-over needs `runtime.handover_socket` in {0}: the socket of the running ringlb \
         (e.g. \"{sugg}\")",
        sugg = crate::config::SUGGESTED_HANDOVER_SOCKET
    )]
    NotConfigured(PathBuf),
    #[error("hand-over socket {path}: {why}")]
    Endpoint { path: PathBuf, why: String },
    #[error("cannot take over through {path}: {why}")]
    Connect { path: PathBuf, why: String },
    #[error("hand-over: the other process closed the connection")]
    Closed,
    #[error("hand-over protocol: {0}")]
    Protocol(String),
    #[error("hand-over: {0}")]
    Io(std::io::Error),
    #[error("the running ringlb (pid {pid}) refused the hand-over: {reason}")]
    Refused { pid: u32, reason: String },
    #[error("hand-over: {what} was offered {expected} sockets but {got} arrived")]
    FdCount {
        what: String,
        expected: usize,
        got: usize,
    },
    #[error("hand-over: the workers were not accepting within {0:?}")]
    NotAccepting(Duration),
}

/// Whether a ringlb serves the hand-over socket `cfg` names (it accepts a connection there); an
/// error if `cfg` (read from `file`) names none.
pub fn running(cfg: &crate::config::Config, file: &std::path::Path) -> Result<bool, HandoverError> {
    let path = cfg
        .runtime
        .handover_socket
        .as_ref()
        .ok_or_else(|| HandoverError::NotConfigured(file.to_path_buf()))?;
    let live = endpoint::connect(path).is_ok();
    tracing::info!(path = %path.display(), live, "hand-over socket checked: take over if live");
    Ok(live)
}

impl HandoverError {
    /// The config (or what it names) is at fault: exit code 2, like a bad file.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            HandoverError::NotConfigured(_) | HandoverError::Endpoint { .. }
        )
    }
}
