//! The judgement of one stream from what both sides reported: verified (both directions
//! complete, lengths and BLAKE3 hashes equal on both sides), cut for an expected reason (its
//! backend was killed, or one side reset on purpose and the other saw a reset), or a failure
//! naming the check it fails. Must never call a stream verified on one side's word, nor excuse
//! a cut that no kill or planned reset explains.

use serde::Serialize;

use super::header::Kind;
use super::outcome::{Cause, End, SideOutcome};
use super::pattern::prefix_digest;
use super::plan::Plan;
use super::record::StreamRecord;

/// A client that started connecting before a kill and was reset within this long after it, on a stream
/// no backend ever claimed, is blamed on the kill: ringlb had placed it on the killed backend,
/// in its accept queue or accepted but not yet read. Generous, because a driver busy with
/// ~10,000 streams takes seconds to see every reset.
pub const KILL_ATTRIBUTION_MS: u64 = 15_000;

/// When a backend was killed (milliseconds on the run clock).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KillMark {
    pub backend: usize,
    pub at_ms: u64,
    /// When its listening socket actually closed: a client that started connecting before
    /// then may have been placed in the backend's accept queue.
    pub closed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutReason {
    BackendKilled,
    /// Killed before its backend read the header (in the accept queue or just accepted).
    BackendKilledBeforeHeader,
    ClientReset,
    BackendReset,
    /// A planned reset ringlb passed on, dropped by this host's kernel on the way to the
    /// other side (see `Cause::ResetLost`): counted apart.
    ResetLostInKernel,
}

impl CutReason {
    pub const ALL: [CutReason; 5] = [
        CutReason::BackendKilled,
        CutReason::BackendKilledBeforeHeader,
        CutReason::ClientReset,
        CutReason::BackendReset,
        CutReason::ResetLostInKernel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CutReason::BackendKilled => "backend killed",
            CutReason::BackendKilledBeforeHeader => "backend killed before it read the header",
            CutReason::ClientReset => "client reset on purpose",
            CutReason::BackendReset => "backend reset on purpose",
            CutReason::ResetLostInKernel => "reset passed on, then dropped by this host's kernel",
        }
    }
}

/// The checks a stream can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamCheck {
    /// Every stream completes or is cut for an expected reason.
    Streams,
    /// What one side received is what the other sent (whole, or a prefix when cut).
    Hashes,
    /// A reset or kill reaches the other side as a reset, never as a clean EOF or silence.
    ResetPropagation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub check: StreamCheck,
    /// The failure without its numbers, to count alike failures together.
    pub key: String,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Verified,
    Cut(CutReason),
    Failed(Vec<Failure>),
}

/// A verdict, and the bytes of each direction that arrived whole and matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub verdict: Verdict,
    pub up_verified: Option<u64>,
    pub down_verified: Option<u64>,
}

fn fail(check: StreamCheck, key: String, what: String) -> Failure {
    Failure { check, key, what }
}

/// How a side ended, in a word or two.
fn end_key(side: Option<&SideOutcome>) -> String {
    match side.map(|s| &s.end) {
        None => "none".into(),
        Some(End::Completed) => "completed".into(),
        Some(End::ResetByUs) => "reset by itself".into(),
        Some(End::Killed) => "killed".into(),
        Some(End::Cut { cause, .. }) => format!("cut ({cause:?})"),
    }
}

/// Checks one direction. `Ok(Some(len))`: complete and equal; `Ok(None)`: cut, and what arrived
/// is a prefix of what was sent.
fn direction(
    name: &str,
    recv: &SideOutcome,
    sender: Option<&SideOutcome>,
    pattern: u64,
    planned: u64,
) -> Result<Option<u64>, Failure> {
    let got = recv.recv;
    if recv.read_eof {
        let Some(s) = sender else {
            let what = format!("{name}: EOF with no sender");
            return Err(fail(StreamCheck::Streams, what.clone(), what));
        };
        if !s.wrote_fin {
            return Err(fail(
                StreamCheck::ResetPropagation,
                format!("{name}: clean EOF, but the sender never shut down"),
                format!("{name}: clean EOF after {} bytes, but the sender never shut down (a reset or kill arrived as a FIN)", got.len),
            ));
        }
        if got != s.sent || s.sent.len != planned {
            return Err(fail(
                StreamCheck::Hashes,
                format!("{name}: complete, but not what was sent"),
                format!(
                    "{name}: received {} bytes, sender sent {} (planned {planned}), hashes {}",
                    got.len,
                    s.sent.len,
                    if got.hash == s.sent.hash {
                        "equal"
                    } else {
                        "differ"
                    }
                ),
            ));
        }
        return Ok(Some(got.len));
    }
    let limit = sender.map_or(planned, |s| s.sent.len);
    if got.len > limit || got != prefix_digest(pattern, got.len) {
        return Err(fail(
            StreamCheck::Hashes,
            format!("{name}: cut, and what arrived is not a prefix of what was sent"),
            format!("{name}: the {} bytes received before the cut are not the first {} bytes sent (sender sent {limit})", got.len, got.len),
        ));
    }
    Ok(None)
}

fn cut_at(side: &SideOutcome) -> Option<u64> {
    match side.end {
        End::Cut { at_ms, .. } => Some(at_ms),
        _ => None,
    }
}

fn describe(side: Option<&SideOutcome>) -> String {
    match side {
        None => "nothing (no backend claimed the stream)".into(),
        Some(s) => match &s.end {
            End::Cut {
                cause,
                at_ms,
                detail,
            } => {
                format!(
                    "cut ({cause:?}, {detail}) at {at_ms} ms after {} sent / {} received",
                    s.sent.len, s.recv.len
                )
            }
            end => format!(
                "{end:?} after {} sent / {} received",
                s.sent.len, s.recv.len
            ),
        },
    }
}

/// Whether a stream whose client started connecting at `connect_started_ms` and was cut at
/// `at_ms` may have sat in the accept queue of a backend killed meanwhile: connect started
/// before the killed backend's listening socket closed (ringlb cannot have placed it on that
/// backend otherwise; a busy driver sees its connect complete late, so the start is the
/// bound), cut within [`KILL_ATTRIBUTION_MS`] of the kill.
fn after_kill(kills: &[KillMark], connect_started_ms: Option<u64>, at_ms: u64) -> bool {
    let Some(connected) = connect_started_ms else {
        return false;
    };
    kills.iter().any(|k| {
        connected <= k.closed_ms.max(k.at_ms)
            && (k.at_ms..=k.at_ms + KILL_ATTRIBUTION_MS).contains(&at_ms)
    })
}

/// Judges one stream against the kills of the run.
pub fn judge(rec: &StreamRecord, kills: &[KillMark]) -> Judged {
    let h = &rec.header;
    let client = match &rec.client {
        Ok(c) => c,
        Err(e) => {
            // ringlb reset a client it had placed on a backend killed before the header got
            // there; with a busy driver that can happen before the client wrote its header.
            let verdict =
                if e.cause == Cause::Reset && after_kill(kills, rec.connect_started_ms, e.at_ms) {
                    Verdict::Cut(CutReason::BackendKilledBeforeHeader)
                } else {
                    let what = format!("could not set up the stream through ringlb: {}", e.detail);
                    let key = format!("stream setup failed ({:?})", e.cause);
                    Verdict::Failed(vec![fail(StreamCheck::Streams, key, what)])
                };
            return Judged {
                verdict,
                up_verified: None,
                down_verified: None,
            };
        }
    };
    let backend = rec.backend.as_ref().map(|b| &b.side);
    let plan = Plan::derive(h);
    let mut failures = Vec::new();
    let down = direction(
        "backend->client",
        client,
        backend,
        plan.down.pattern,
        h.down_len,
    );
    let up = match backend {
        Some(b) => direction(
            "client->backend",
            b,
            Some(client),
            plan.up.pattern,
            h.up_len,
        ),
        None => Ok(None),
    };
    let (up_verified, down_verified) = (up.clone().ok().flatten(), down.clone().ok().flatten());
    failures.extend(up.err());
    failures.extend(down.err());

    let killed = backend.is_some_and(|b| b.end == End::Killed);
    let unclaimed_kill = backend.is_none()
        && cut_at(client).is_some_and(|t| after_kill(kills, rec.connect_started_ms, t));
    let ends = format!(
        "client {}, backend {}",
        end_key(Some(client)),
        end_key(backend)
    );
    let both = format!(
        "client: {}; backend: {}",
        describe(Some(client)),
        describe(backend)
    );
    let reset_seen = |s: Option<&SideOutcome>| match s.map(|s| &s.end) {
        Some(End::Cut {
            cause: Cause::Timeout,
            ..
        }) => Some(false),
        Some(End::Cut { .. }) => Some(true),
        _ => None,
    };
    let lost = |s: Option<&SideOutcome>| {
        matches!(
            s.map(|s| &s.end),
            Some(End::Cut {
                cause: Cause::ResetLost,
                ..
            })
        )
    };
    let cut = if killed {
        Some(CutReason::BackendKilled)
    } else if unclaimed_kill {
        Some(CutReason::BackendKilledBeforeHeader)
    } else {
        match h.kind {
            k if k.completes() => {
                if client.end == End::Completed
                    && backend.is_some_and(|b| b.end == End::Completed)
                    && failures.is_empty()
                {
                    None
                } else {
                    failures.push(fail(
                        StreamCheck::Streams,
                        format!("{} stream cut: {ends}", k.name()),
                        format!("{} stream cut: {both}", k.name()),
                    ));
                    None
                }
            }
            Kind::ClientReset => {
                let ours = client.end == End::ResetByUs;
                match (ours, reset_seen(backend)) {
                    (true, Some(true)) if lost(backend) => Some(CutReason::ResetLostInKernel),
                    (true, Some(true)) => Some(CutReason::ClientReset),
                    (true, Some(false)) => {
                        failures.push(fail(
                            StreamCheck::ResetPropagation,
                            "the client's reset never reached the backend".into(),
                            format!("the client's reset never reached the backend: {both}"),
                        ));
                        None
                    }
                    _ => {
                        if failures.is_empty() {
                            failures.push(fail(
                                StreamCheck::Streams,
                                format!("client-reset stream did not end as planned: {ends}"),
                                format!("client-reset stream did not end as planned: {both}"),
                            ));
                        }
                        None
                    }
                }
            }
            _ => {
                let ours = backend.is_some_and(|b| b.end == End::ResetByUs);
                match (ours, reset_seen(Some(client))) {
                    (true, Some(true)) if lost(Some(client)) => Some(CutReason::ResetLostInKernel),
                    (true, Some(true)) => Some(CutReason::BackendReset),
                    (true, Some(false)) => {
                        failures.push(fail(
                            StreamCheck::ResetPropagation,
                            "the backend's reset never reached the client".into(),
                            format!("the backend's reset never reached the client: {both}"),
                        ));
                        None
                    }
                    _ => {
                        if failures.is_empty() {
                            failures.push(fail(
                                StreamCheck::Streams,
                                format!("backend-reset stream did not end as planned: {ends}"),
                                format!("backend-reset stream did not end as planned: {both}"),
                            ));
                        }
                        None
                    }
                }
            }
        }
    };
    let verdict = if !failures.is_empty() {
        Verdict::Failed(failures)
    } else if let Some(reason) = cut {
        Verdict::Cut(reason)
    } else {
        Verdict::Verified
    };
    Judged {
        verdict,
        up_verified,
        down_verified,
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
