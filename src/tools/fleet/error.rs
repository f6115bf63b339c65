//! Errors a mock backend reports to its caller (startup and run-time setup only).
//!
//! Per-connection failures never surface here: a bad client is answered and dropped, it must
//! never take the server down.

use std::net::SocketAddr;

/// What went wrong while starting or running a mock backend.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// An option is out of range; `field` names the [`crate::tools::fleet::MockOptions`] field.
    #[error("invalid mock backend option {field}: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    /// The listening socket could not be created, bound or put in listen state.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The tokio runtime (or its thread) for a self-hosted backend could not be built.
    #[error("cannot start the runtime of mock backend {name}: {source}")]
    Runtime {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// Installing the SIGINT/SIGTERM handlers failed.
    #[error("cannot install signal handlers: {source}")]
    Signal {
        #[source]
        source: std::io::Error,
    },
}
