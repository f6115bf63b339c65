//! The result of active health checks as the table sees it: one byte per backend that the
//! control plane's checker (`crate::health`) writes on a transition and every pick reads, the
//! reason of the last down transition, and a reset generation that asks workers to cut the
//! backend's live streams (`on_down = "reset"`).
//!
//! It lives in the shared backend state, so a rebuilt table keeps it. Picks read it with one
//! plain atomic load: it must never take a lock or read the clock, and only the checker (and a
//! table build, which sets the start state of a newly checked backend) may write it.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::spec::{ActiveCheck, CheckStart};

const NOT_CHECKED: u8 = 0;
const UNKNOWN: u8 = 1;
const UP: u8 = 2;
const DOWN: u8 = 3;

/// Bumped on every reset request of any backend, so a worker learns with one load per loop
/// turn whether it has streams to look at, instead of scanning them all.
static RESET_EPOCH: AtomicU64 = AtomicU64::new(0);

/// How many times any backend asked for its streams to be reset since the process started.
/// A worker that sees it change scans its streams for [`ActiveGuard::reset_requested`]
/// (`super::ActiveGuard`).
#[inline]
pub fn reset_epoch() -> u64 {
    RESET_EPOCH.load(Ordering::Acquire)
}

/// What the active check says about a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    /// Its pool has no active check.
    NotChecked,
    /// Checked, but no result yet (`start = "unknown"`): takes no stream.
    Unknown,
    Up,
    /// Taken down by the check, for this reason (the last failure before the transition).
    Down(CheckFailure),
}

/// Why a check failed, in few enough bits to live in one atomic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    /// The connect was refused.
    Refused,
    /// No answer within the check's `timeout`.
    Timeout,
    /// The HTTP status was not one of `expect_status` (or the WebSocket handshake was refused
    /// with this status).
    Status(u16),
    /// The body did not contain `expect_body`.
    Body,
    /// The backend closed or reset the connection before a complete answer.
    Closed,
    /// The answer was not HTTP, or not a WebSocket handshake.
    Protocol,
    /// Any other socket error.
    Io,
}

impl CheckFailure {
    fn encode(self) -> u32 {
        match self {
            CheckFailure::Refused => 1 << 16,
            CheckFailure::Timeout => 2 << 16,
            CheckFailure::Status(code) => (3 << 16) | u32::from(code),
            CheckFailure::Body => 4 << 16,
            CheckFailure::Closed => 5 << 16,
            CheckFailure::Protocol => 6 << 16,
            CheckFailure::Io => 7 << 16,
        }
    }

    fn decode(v: u32) -> CheckFailure {
        match v >> 16 {
            1 => CheckFailure::Refused,
            2 => CheckFailure::Timeout,
            3 => CheckFailure::Status((v & 0xffff) as u16),
            4 => CheckFailure::Body,
            5 => CheckFailure::Closed,
            6 => CheckFailure::Protocol,
            _ => CheckFailure::Io,
        }
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Refused => f.write_str("refused"),
            CheckFailure::Timeout => f.write_str("timeout"),
            CheckFailure::Status(code) => write!(f, "status {code}"),
            CheckFailure::Body => f.write_str("body mismatch"),
            CheckFailure::Closed => f.write_str("closed"),
            CheckFailure::Protocol => f.write_str("protocol error"),
            CheckFailure::Io => f.write_str("socket error"),
        }
    }
}

/// The active-check part of one backend's shared state.
#[derive(Debug, Default)]
pub(crate) struct CheckState {
    state: AtomicU8,
    reason: AtomicU32,
    reset_generation: AtomicU32,
}

impl CheckState {
    /// True if picks must skip the backend: the check says down, or has not passed yet.
    #[inline]
    pub(crate) fn blocks(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), UNKNOWN | DOWN)
    }

    /// A table build: a pool without checks makes its backends not checked (a reload that
    /// removes the check brings them back); one with checks gives a backend that was not
    /// checked so far its start state, and leaves a checked one as the checker left it.
    pub(crate) fn configure(&self, check: Option<&ActiveCheck>) {
        match check {
            None => self.state.store(NOT_CHECKED, Ordering::Release),
            Some(check) => {
                let start = match check.start {
                    CheckStart::Up => UP,
                    CheckStart::Unknown => UNKNOWN,
                };
                let _ = self.state.compare_exchange(
                    NOT_CHECKED,
                    start,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }

    pub(crate) fn status(&self) -> CheckStatus {
        match self.state.load(Ordering::Acquire) {
            NOT_CHECKED => CheckStatus::NotChecked,
            UNKNOWN => CheckStatus::Unknown,
            UP => CheckStatus::Up,
            _ => CheckStatus::Down(CheckFailure::decode(self.reason.load(Ordering::Acquire))),
        }
    }

    /// The checker says up; returns the status before.
    pub(crate) fn set_up(&self) -> CheckStatus {
        let before = self.status();
        self.state.store(UP, Ordering::Release);
        before
    }

    /// The checker says down for `why`; returns the status before.
    pub(crate) fn set_down(&self, why: CheckFailure) -> CheckStatus {
        let before = self.status();
        self.reason.store(why.encode(), Ordering::Release);
        self.state.store(DOWN, Ordering::Release);
        before
    }

    /// Asks every worker to reset the streams opened on this backend so far.
    pub(crate) fn request_reset(&self) {
        self.reset_generation.fetch_add(1, Ordering::AcqRel);
        RESET_EPOCH.fetch_add(1, Ordering::AcqRel);
    }

    /// Read when a stream is counted; a stream whose generation is behind is to be reset.
    #[inline]
    pub(crate) fn reset_generation(&self) -> u32 {
        self.reset_generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::spec::{OnDown, Probe};
    use std::time::Duration;

    fn check(start: CheckStart) -> ActiveCheck {
        ActiveCheck {
            probe: Probe::Tcp,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            on_down: OnDown::Keep,
            start,
        }
    }

    #[test]
    fn configure_sets_the_start_state_once() {
        let s = CheckState::default();
        assert_eq!(s.status(), CheckStatus::NotChecked);
        assert!(!s.blocks());
        s.configure(Some(&check(CheckStart::Unknown)));
        assert_eq!(s.status(), CheckStatus::Unknown);
        assert!(s.blocks());
        s.set_up();
        s.configure(Some(&check(CheckStart::Unknown)));
        assert_eq!(s.status(), CheckStatus::Up, "a rebuild keeps the result");
        s.configure(None);
        assert_eq!(s.status(), CheckStatus::NotChecked);
        s.configure(Some(&check(CheckStart::Up)));
        assert_eq!(s.status(), CheckStatus::Up);
    }

    #[test]
    fn down_keeps_its_reason() {
        let s = CheckState::default();
        for why in [
            CheckFailure::Refused,
            CheckFailure::Timeout,
            CheckFailure::Status(503),
            CheckFailure::Body,
            CheckFailure::Closed,
            CheckFailure::Protocol,
            CheckFailure::Io,
        ] {
            s.set_down(why);
            assert_eq!(s.status(), CheckStatus::Down(why));
            assert!(s.blocks());
        }
        assert_eq!(s.set_up(), CheckStatus::Down(CheckFailure::Io));
        assert!(!s.blocks());
    }

    #[test]
    fn reset_bumps_generation_and_epoch() {
        let s = CheckState::default();
        let (gen, epoch) = (s.reset_generation(), reset_epoch());
        s.request_reset();
        assert_eq!(s.reset_generation(), gen + 1);
        assert!(reset_epoch() > epoch);
    }
}
