//! One generation: the request body it comes from, the token schedule, and its accounting.
//!
//! Tokens are due at `first_at + i * interval`; when the writer falls behind (or the pace is
//! very high) all due tokens come out as one batch so a fast mock never needs one timer or one
//! syscall per token. A stall (see `stall.rs`) holds the next token back and moves the whole
//! remaining schedule later by its length. Must never emit a token before it is due, nor count
//! tokens not written.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::capacity::Slot;
use super::stall::StallSwitch;
use super::stats::BackendStats;

// The largest `max_tokens` accepted is the one the length distributions draw up to.
pub(crate) use crate::tools::lengths::MAX_TOKENS;

/// Most tokens written in one batch, so one write stays small even at an unpaced rate.
const MAX_BATCH: u64 = 256;

/// Bytes per prompt token when a prompt is text: the usual rule of thumb for BPE tokenizers
/// on English, close enough for a KV budget.
const BYTES_PER_TOKEN: u64 = 4;

/// The fields of a completions request the mock looks at.
#[derive(Debug, Deserialize)]
pub(crate) struct GenRequest {
    /// `None`: the backend's `--max-tokens-dist` decides.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// Only its length matters (the KV it takes); text, texts or token ids as OpenAI allows.
    #[serde(default)]
    prompt: Option<serde_json::Value>,
}

impl GenRequest {
    /// Parses a JSON request body; the error text is meant for the client.
    pub(crate) fn parse(body: &[u8]) -> Result<GenRequest, String> {
        let req: GenRequest =
            serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
        if req.max_tokens.is_some_and(|n| n > MAX_TOKENS) {
            return Err(format!("max_tokens must be at most {MAX_TOKENS}"));
        }
        Ok(req)
    }

    /// The prompt's length in tokens, estimated; `None` without a prompt of a known shape.
    pub(crate) fn prompt_tokens(&self) -> Option<u64> {
        use serde_json::Value;
        let text = |s: &str| (s.len() as u64).div_ceil(BYTES_PER_TOKEN).max(1);
        match self.prompt.as_ref()? {
            Value::String(s) => Some(text(s)),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Some(text(s)),
                    Value::Number(_) => Some(1),
                    Value::Array(ids) => Some(ids.len() as u64),
                    _ => None,
                })
                .sum(),
            _ => None,
        }
    }
}

/// What a generation asks of the GPU: its prompt's KV and how many tokens it will write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub prompt: u64,
    pub max_tokens: u64,
}

impl Need {
    /// KV tokens reserved at admission: the prompt plus every token it may generate.
    pub(crate) fn kv(&self) -> u64 {
        self.prompt.saturating_add(self.max_tokens)
    }
}

/// The text of token `i`, as clients see it.
pub(crate) fn token_text(i: u64) -> String {
    format!("tok{i} ")
}

/// When a generation was received and how its tokens are paced.
pub(crate) struct Schedule {
    pub id: u64,
    pub received: Instant,
    pub first_at: Instant,
    pub interval: Duration,
    pub total: u64,
}

/// A generation holding a slot. Dropping it before [`Generation::finish`] counts it aborted.
pub(crate) struct Generation {
    id: u64,
    _slot: Slot,
    stats: Arc<BackendStats>,
    received: Instant,
    first_at: Instant,
    interval: Duration,
    total: u64,
    next: u64,
    finished: bool,
    stall: watch::Receiver<bool>,
    /// Keeps the sender of `stall` alive, so waiting on it never fails.
    _switch: Arc<StallSwitch>,
}

impl Generation {
    pub(crate) fn new(
        s: Schedule,
        slot: Slot,
        stats: Arc<BackendStats>,
        switch: Arc<StallSwitch>,
    ) -> Generation {
        Generation {
            id: s.id,
            _slot: slot,
            stats,
            received: s.received,
            first_at: s.first_at,
            interval: s.interval,
            total: s.total,
            next: 0,
            finished: false,
            stall: switch.watch(),
            _switch: switch,
        }
    }

    /// This backend's sequence number of the request (for response ids).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of tokens this generation produces.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Waits until the next token is due (and generation is not stalled) and returns every
    /// token due by then (at most [`MAX_BATCH`]); `None` once all tokens were handed out.
    pub(crate) async fn next_batch(&mut self) -> Option<Range<u64>> {
        if self.next >= self.total {
            return None;
        }
        loop {
            if *self.stall.borrow_and_update() {
                let since = Instant::now();
                // Cannot fail: this generation holds the sender (`_switch`).
                let _ = self.stall.wait_for(|stalled| !*stalled).await;
                self.first_at += since.elapsed();
                continue;
            }
            let due_at = self.due_at(self.next);
            tokio::select! {
                () = tokio::time::sleep_until(due_at) => {
                    if !*self.stall.borrow() {
                        break;
                    }
                }
                _ = self.stall.changed() => {}
            }
        }
        let elapsed = Instant::now().saturating_duration_since(self.first_at);
        let due = match elapsed.as_nanos().checked_div(self.interval.as_nanos()) {
            Some(n) => u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1),
            None => u64::MAX,
        };
        let end = due
            .min(self.total)
            .min(self.next + MAX_BATCH)
            .max(self.next + 1);
        let batch = self.next..end;
        self.next = end;
        Some(batch)
    }

    fn due_at(&self, i: u64) -> Instant {
        // Cannot overflow: the options cap the interval at an hour and requests cap
        // `max_tokens` at MAX_TOKENS, so the offset stays below twelve years.
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        self.first_at + self.interval.saturating_mul(i)
    }

    /// Accounts tokens the client was sent; the first call records the time to first token.
    pub(crate) fn written(&mut self, batch: Range<u64>) {
        if batch.is_empty() {
            return;
        }
        if batch.start == 0 {
            self.stats.record_ttft(self.received.elapsed());
        }
        BackendStats::add(&self.stats.tokens_total, batch.end - batch.start);
    }

    /// The client got every token and the end marker.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        self.stats.streams_total.fetch_add(1, Relaxed);
        BackendStats::add(&self.stats.finished_tokens_total, self.total);
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.aborted_total.fetch_add(1, Relaxed);
        }
    }
}
