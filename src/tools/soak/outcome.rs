//! What one side of a soak stream did, as the driver records it: the bytes each way (length
//! and BLAKE3), whether it wrote and read a FIN, its longest wait, and how it ended. Must never
//! turn an I/O error into anything but a cut with its cause.

use serde::Serialize;

use super::pattern::{Digest, Hashing};
use super::side::Progress;

/// Why a side stopped before completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// ECONNRESET, EPIPE or ECONNABORTED: the connection was reset.
    Reset,
    /// No byte moved either way on this side for the no-progress limit.
    Timeout,
    /// Any other I/O error.
    Io,
    /// This side was waiting for the other side's EOF, and its read side failed instead.
    PeerGone,
    /// No byte moved, and the kernel shows why: ringlb's socket of this hop is gone (closed
    /// with a reset) while this socket dropped incoming segments. A reset is sent once; this
    /// host's kernel dropped it (see `snapshot`).
    ResetLost,
}

/// How a side ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "end")]
pub enum End {
    /// Wrote everything and a FIN, and read up to the peer's FIN.
    Completed,
    /// Reset the connection on purpose, as planned.
    ResetByUs,
    /// The backend was killed while it held the stream.
    Killed,
    Cut {
        cause: Cause,
        at_ms: u64,
        detail: String,
    },
}

/// What one side did: kept outside the I/O future so a killed backend can still report it.
#[derive(Default)]
pub struct SideState {
    pub sent: Hashing,
    pub recv: Hashing,
    pub wrote_fin: bool,
    pub read_eof: bool,
}

/// What a side reports: its digests both ways, whether it wrote and read a FIN, and its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideOutcome {
    pub sent: Digest,
    pub recv: Digest,
    pub wrote_fin: bool,
    pub read_eof: bool,
    /// Longest time this side waited with no byte moving either way (planned pauses included).
    pub max_gap_ms: u64,
    pub end: End,
}

impl SideState {
    pub fn outcome(&self, end: End, progress: &Progress) -> SideOutcome {
        SideOutcome {
            sent: self.sent.digest(),
            recv: self.recv.digest(),
            wrote_fin: self.wrote_fin,
            read_eof: self.read_eof,
            max_gap_ms: progress.max_gap_ms(),
            end,
        }
    }
}

pub type Failure = (Cause, String);

/// The cause of an I/O error, and a line saying what failed.
pub fn failure(what: &str, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    let cause = match e.kind() {
        K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => Cause::Reset,
        K::TimedOut => Cause::Timeout,
        _ => Cause::Io,
    };
    (cause, format!("{what}: {e}"))
}
