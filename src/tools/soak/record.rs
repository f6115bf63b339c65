//! What the driver knows about one stream at its end: its header, what the client saw (or why
//! it could not set the stream up) and what the backend that claimed it reported. Must never
//! hold a judgement: [`super::verdict`] makes that.

use serde::Serialize;

use super::header::Header;
use super::outcome::{Cause, SideOutcome};
use super::shared::BackendReport;

/// Everything known about one stream at the end.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRecord {
    pub header: Header,
    /// What the client saw; `Err` when it could not connect or write its header.
    pub client: Result<SideOutcome, SetupFailure>,
    /// When the client started its connect to ringlb (ms on the run clock).
    pub connect_started_ms: Option<u64>,
    pub backend: Option<BackendReport>,
}

/// Why a client never got its stream set up (connect, header write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupFailure {
    pub cause: Cause,
    pub at_ms: u64,
    pub detail: String,
}
