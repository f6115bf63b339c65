//! The HTTP stage of a peek: a complete request head, and the scan of its body for the JSON
//! members the listener's rules and session keys want (through the chunked decoder when the
//! body is chunked).
//!
//! It scans only while a decision waits on the body, from where the previous call stopped, and
//! stops at the first key settled so that the decision falls at the same byte however the
//! body was split. It must never scan past the body's end or `peek_body_max`, and never hold
//! more than the scanner's caps (the body stays in the engine's buffer).

use super::chunked::{Chunked, ChunkedStatus};
use super::hash::session_hash;
use super::http::{BodyFraming, HttpHead};
use super::json::{JsonScan, Slot};
use super::matcher::Seen;
use super::rules::{Decision, Routes, SessionKey};

/// What the HTTP stage decided.
pub(super) struct Outcome {
    pub pool: usize,
    pub rule: Option<usize>,
    pub hash: Option<u64>,
    pub capped: bool,
}

/// A complete request head and the scan of its body.
#[derive(Debug)]
pub(super) struct HttpPeek {
    head: Box<HttpHead>,
    scan: JsonScan,
    chunked: Option<Chunked>,
    /// Raw body bytes consumed so far (chunk framing included).
    fed: usize,
    capped: bool,
}

impl HttpPeek {
    pub(super) fn new(head: Box<HttpHead>, routes: &Routes) -> HttpPeek {
        let mut scan = JsonScan::new(routes.json_keys());
        let scannable = match head.body {
            BodyFraming::Length(n) => n > 0,
            BodyFraming::Chunked => true,
            BodyFraming::None | BodyFraming::Unknown => false,
        };
        if !scannable || routes.settings().body_max == 0 {
            scan.finish();
        }
        let chunked = (head.body == BodyFraming::Chunked).then(Chunked::new);
        HttpPeek {
            head,
            scan,
            chunked,
            fed: 0,
            capped: false,
        }
    }

    /// The outcome, scanning the body as far as needed and available; None = more bytes
    /// needed. With `finals`, whatever is still unknown counts as absent.
    pub(super) fn run(
        &mut self,
        routes: &Routes,
        buf: &[u8],
        skip: usize,
        finals: bool,
    ) -> Option<Outcome> {
        // Each pass either decides, settles a key, or ends the scan.
        for _ in 0..routes.json_keys().len() + 2 {
            if let Some(o) = self.decide(routes, false) {
                return Some(o);
            }
            if !self.advance(routes, buf, skip) {
                if !finals {
                    return None;
                }
                break;
            }
        }
        self.scan.finish();
        Some(self.decide(routes, true).unwrap_or(Outcome {
            pool: routes.default_pool(),
            rule: None,
            hash: None,
            capped: self.capped,
        }))
    }

    fn decide(&self, routes: &Routes, finals: bool) -> Option<Outcome> {
        let model = match routes.model_slot().map(|i| self.scan.slot(i)) {
            Some(Slot::Pending) => None,
            Some(Slot::Found(m)) => Some(Some(m.as_str())),
            _ => Some(None),
        };
        let Decision::Pool { pool, rule } = routes.decide(&Seen::Http(&self.head, model), finals)
        else {
            return None;
        };
        let hash = match routes.session_key(pool) {
            None => None,
            Some(SessionKey::Header(name)) => self
                .head
                .header(name)
                .filter(|v| !v.is_empty())
                .map(|v| session_hash(v.as_bytes())),
            Some(SessionKey::Json(key)) => {
                let slot = routes.json_keys().iter().position(|k| k == key);
                match slot.map(|i| self.scan.slot(i)) {
                    Some(Slot::Pending) if !finals => return None,
                    Some(Slot::Found(v)) => Some(session_hash(v.as_bytes())),
                    _ => None,
                }
            }
        };
        Some(Outcome {
            pool,
            rule,
            hash,
            capped: self.capped,
        })
    }

    /// Scans the body bytes not yet scanned, stopping at the first key settled; ends the scan
    /// at the end of the body or at `peek_body_max`. Whether a key was settled.
    fn advance(&mut self, routes: &Routes, buf: &[u8], skip: usize) -> bool {
        if self.scan.is_done() {
            return false;
        }
        let before = self.scan.pending();
        let body_max = routes.settings().body_max;
        let limit = match self.head.body {
            BodyFraming::Length(n) => usize::try_from(n).unwrap_or(usize::MAX).min(body_max),
            _ => body_max,
        };
        let start = skip.saturating_add(self.head.head_len);
        let end = start.saturating_add(limit).min(buf.len());
        let from = start.saturating_add(self.fed);
        if from < end {
            let (input, keys) = (&buf[from..end], routes.json_keys());
            let scan = &mut self.scan;
            self.fed += match &mut self.chunked {
                None => scan.feed(keys, input),
                Some(decoder) => {
                    // The sink takes nothing more once a key is settled, so that the decision
                    // is made at the same byte however the body was split.
                    let mut settled = false;
                    let (n, status) = decoder.feed(input, |payload| {
                        if settled {
                            return 0;
                        }
                        let pending = scan.pending();
                        let n = scan.feed(keys, payload);
                        settled = scan.pending() != pending;
                        n
                    });
                    if status != ChunkedStatus::More {
                        scan.finish();
                    }
                    n
                }
            };
        }
        if self.scan.pending() != before {
            return true;
        }
        let body_ended = matches!(self.head.body, BodyFraming::Length(n) if self.fed as u64 >= n);
        if body_ended {
            self.scan.finish();
        } else if self.fed >= body_max {
            self.capped = true;
            self.scan.finish();
        }
        self.scan.pending() != before
    }
}
