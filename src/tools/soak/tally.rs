//! Counting the judged streams for the report: totals, cuts by reason, bytes verified each way,
//! a line per kind, and the first failures in full. Must never count a stream twice or drop
//! one: every stream the run started lands in exactly one of verified, cut, failed or hung.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::header::{Header, Kind};
use super::outcome::{End, SideOutcome};
use super::record::{SetupFailure, StreamRecord};
use super::verdict::{CutReason, Failure, Judged, StreamCheck, Verdict};

/// Failures kept in full in the report...
pub const FAILURE_SAMPLES: usize = 60;
/// ...at most this many of each key, so every kind of failure has examples.
const SAMPLES_PER_KEY: u64 = 3;

/// The longest wait for a byte of each stream that did not stall on purpose (either side,
/// pacing pauses included): ringlb starving streams shows here long before a stream times out.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Waits {
    pub streams: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub p999_ms: u64,
    pub max_ms: u64,
    pub max_stream: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindTally {
    pub kind: &'static str,
    pub streams: u64,
    pub stalled: u64,
    pub verified: u64,
    pub cut: u64,
    pub failed: u64,
}

/// One failed stream, with everything needed to reproduce and read it.
#[derive(Debug, Clone, Serialize)]
pub struct FailureSample {
    pub header: Header,
    pub failures: Vec<Failure>,
    pub backend: Option<usize>,
    pub client: Option<SideOutcome>,
    pub client_error: Option<SetupFailure>,
    pub backend_side: Option<SideOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    pub started: u64,
    pub connected: u64,
    /// Both sides ended [`End::Completed`].
    pub completed: u64,
    pub verified: u64,
    pub cut_expected: u64,
    pub cut_by_reason: BTreeMap<&'static str, u64>,
    pub failed: u64,
    pub failed_by_check: BTreeMap<&'static str, u64>,
    /// Failed streams by the check and key of their first failure: alike failures together.
    pub failed_by_key: BTreeMap<String, u64>,
    pub hung: u64,
    pub hung_ids: Vec<u64>,
    pub up_bytes_verified: u64,
    pub down_bytes_verified: u64,
    pub by_kind: Vec<KindTally>,
    pub failures: Vec<FailureSample>,
    /// (longest wait, stream id) of every stream without a planned stall.
    #[serde(skip)]
    pub gaps: Vec<(u64, u64)>,
    #[serde(skip)]
    pub killed_on: HashMap<usize, u64>,
    #[serde(skip)]
    pub cut_before_header_at: Vec<u64>,
}

pub fn check_name(c: StreamCheck) -> &'static str {
    match c {
        StreamCheck::Streams => "streams",
        StreamCheck::Hashes => "hashes",
        StreamCheck::ResetPropagation => "reset-propagation",
    }
}

impl Tally {
    pub fn new(started: usize) -> Tally {
        let by_kind = Kind::ALL
            .iter()
            .map(|k| KindTally {
                kind: k.name(),
                streams: 0,
                stalled: 0,
                verified: 0,
                cut: 0,
                failed: 0,
            })
            .collect();
        Tally {
            started: started as u64,
            connected: 0,
            completed: 0,
            verified: 0,
            cut_expected: 0,
            cut_by_reason: CutReason::ALL.iter().map(|r| (r.name(), 0)).collect(),
            failed: 0,
            failed_by_check: BTreeMap::new(),
            failed_by_key: BTreeMap::new(),
            hung: 0,
            hung_ids: Vec::new(),
            up_bytes_verified: 0,
            down_bytes_verified: 0,
            by_kind,
            failures: Vec::new(),
            gaps: Vec::new(),
            killed_on: HashMap::new(),
            cut_before_header_at: Vec::new(),
        }
    }

    fn kind(&mut self, k: Kind) -> &mut KindTally {
        let i = Kind::ALL
            .iter()
            .position(|x| *x == k)
            .expect("every kind listed");
        &mut self.by_kind[i]
    }

    pub fn add(&mut self, rec: &StreamRecord, j: &Judged) {
        let backend = rec.backend.as_ref();
        let client = rec.client.as_ref().ok();
        self.connected += u64::from(client.is_some());
        let both_completed = client.is_some_and(|c| c.end == End::Completed)
            && backend.is_some_and(|b| b.side.end == End::Completed);
        self.completed += u64::from(both_completed);
        if let (Some(c), false) = (client, rec.header.stall) {
            let gap = backend.map_or(0, |b| b.side.max_gap_ms).max(c.max_gap_ms);
            self.gaps.push((gap, rec.header.id));
        }
        self.up_bytes_verified += j.up_verified.unwrap_or(0);
        self.down_bytes_verified += j.down_verified.unwrap_or(0);
        let k = self.kind(rec.header.kind);
        k.streams += 1;
        k.stalled += u64::from(rec.header.stall);
        match &j.verdict {
            Verdict::Verified => {
                k.verified += 1;
                self.verified += 1;
            }
            Verdict::Cut(reason) => {
                k.cut += 1;
                self.cut_expected += 1;
                *self.cut_by_reason.entry(reason.name()).or_default() += 1;
                match reason {
                    CutReason::BackendKilled => {
                        let b = backend.map_or(usize::MAX, |b| b.backend);
                        *self.killed_on.entry(b).or_default() += 1;
                    }
                    CutReason::BackendKilledBeforeHeader => {
                        let at = match &rec.client {
                            Ok(SideOutcome {
                                end: End::Cut { at_ms, .. },
                                ..
                            }) => Some(*at_ms),
                            Err(e) => Some(e.at_ms),
                            Ok(_) => None,
                        };
                        self.cut_before_header_at.extend(at);
                    }
                    _ => {}
                }
            }
            Verdict::Failed(failures) => {
                k.failed += 1;
                self.failed += 1;
                let first = check_name(failures[0].check);
                *self.failed_by_check.entry(first).or_default() += 1;
                let key = format!("{first}: {}", failures[0].key);
                let seen = self.failed_by_key.entry(key).or_default();
                *seen += 1;
                if *seen <= SAMPLES_PER_KEY && self.failures.len() < FAILURE_SAMPLES {
                    self.failures.push(FailureSample {
                        header: rec.header,
                        failures: failures.clone(),
                        backend: backend.map(|b| b.backend),
                        client: client.cloned(),
                        client_error: rec.client.as_ref().err().cloned(),
                        backend_side: backend.map(|b| b.side.clone()),
                    });
                }
            }
        }
    }

    /// A stream that had not ended when the run's deadline passed.
    pub fn add_hung(&mut self, h: &Header) {
        self.hung += 1;
        if self.hung_ids.len() < FAILURE_SAMPLES {
            self.hung_ids.push(h.id);
        }
        let k = self.kind(h.kind);
        k.streams += 1;
        k.stalled += u64::from(h.stall);
        k.failed += 1;
    }

    pub fn waits(&self) -> Waits {
        let mut g = self.gaps.clone();
        g.sort_unstable();
        let at = |q: f64| g.get(((g.len() as f64 * q) as usize).min(g.len().saturating_sub(1)));
        let ms = |q| at(q).map_or(0, |x| x.0);
        let (max_ms, max_stream) = g.last().copied().unwrap_or_default();
        Waits {
            streams: g.len() as u64,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms,
            max_stream,
        }
    }

    pub fn failed_of(&self, check: StreamCheck) -> u64 {
        self.failed_by_check
            .get(check_name(check))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::soak::pattern::prefix_digest;

    #[test]
    fn every_stream_lands_in_exactly_one_bucket() {
        let h = Header {
            id: 1,
            kind: Kind::Echo,
            stall: true,
            seed: 2,
            up_len: 5,
            down_len: 5,
        };
        let d = prefix_digest(0, 0);
        let side = SideOutcome {
            sent: d,
            recv: d,
            wrote_fin: true,
            read_eof: true,
            max_gap_ms: 7,
            end: End::Completed,
        };
        let rec = StreamRecord {
            header: h,
            client: Ok(side),
            connect_started_ms: Some(0),
            backend: None,
        };
        let mut t = Tally::new(4);
        let judged = |verdict| Judged {
            verdict,
            up_verified: Some(5),
            down_verified: None,
        };
        t.add(&rec, &judged(Verdict::Verified));
        t.add(&rec, &judged(Verdict::Cut(CutReason::ClientReset)));
        let f = Failure {
            check: StreamCheck::Hashes,
            key: "k".into(),
            what: "x".into(),
        };
        t.add(&rec, &judged(Verdict::Failed(vec![f])));
        t.add_hung(&h);
        assert_eq!((t.verified, t.cut_expected, t.failed, t.hung), (1, 1, 1, 1));
        let echo = &t.by_kind[2];
        assert_eq!(
            (
                echo.streams,
                echo.stalled,
                echo.verified,
                echo.cut,
                echo.failed
            ),
            (4, 4, 1, 1, 2)
        );
        assert_eq!(t.failed_of(StreamCheck::Hashes), 1);
        assert_eq!(t.up_bytes_verified, 15);
        assert_eq!(t.failures.len(), 1);
        assert_eq!(t.failed_by_key["hashes: k"], 1);
        let w = t.waits();
        assert_eq!(
            (w.streams, w.max_ms),
            (0, 0),
            "stalled streams are left out"
        );
        let mut plain = rec.clone();
        plain.header.stall = false;
        for (id, gap) in [(10, 5), (11, 900), (12, 20)] {
            plain.header.id = id;
            if let Ok(c) = plain.client.as_mut() {
                c.max_gap_ms = gap;
            }
            t.add(&plain, &judged(Verdict::Verified));
        }
        let w = t.waits();
        assert_eq!(
            (w.streams, w.p50_ms, w.max_ms, w.max_stream),
            (3, 20, 900, 11)
        );
        assert_eq!(t.cut_by_reason["client reset on purpose"], 1);
    }
}
