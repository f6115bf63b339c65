//! The knobs of a mock backend: what it serves and how fast, validated once at start.
//!
//! Must never accept a value that could make the server panic or spin later (a zero capacity,
//! a NaN rate or slowdown, a name that cannot be sent as a header, phantom streams without a
//! pace, a KV budget no request fits).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::capacity::GpuSpec;
use super::generate::MAX_TOKENS;
use super::{FleetError, MetricsFlavor, TokenDist};

/// Tokens per second per stream: roughly what one vLLM stream of a 7B model produces on a
/// mid-range GPU, and slow enough that a demo table shows streams in flight.
pub const DEFAULT_TOKENS_PER_SEC: f64 = 50.0;

/// Time to first token on an idle backend: a typical prefill time for a short prompt.
pub const DEFAULT_TTFT: Duration = Duration::from_millis(50);

/// Concurrent generations (vLLM's max-num-seqs): small so a demo load of tens of streams
/// overloads one backend and the queueing (growing TTFT) becomes visible.
pub const DEFAULT_CAPACITY: usize = 16;

/// Runtime threads when the backend hosts its own runtime: one is plenty for a mock and leaves
/// the other cores to the balancer under test.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// Prompt length of a request without a (countable) prompt, and of every phantom stream: a
/// short chat turn with its system prompt.
pub const DEFAULT_PROMPT_TOKENS: u64 = 128;

/// Slowest pace accepted (one token an hour): bounds every token deadline far from overflow.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Longest prefill accepted, after the slowdown: the same hour.
const MAX_TTFT: Duration = Duration::from_secs(3600);

/// Most phantom streams: far beyond any GPU's batch, and few enough tasks to start at once.
const MAX_EXTERNAL_LOAD: usize = 65_536;

/// Slowdown factors accepted: from 100 times faster to 1000 times slower.
const SLOWDOWN_RANGE: std::ops::RangeInclusive<f64> = 0.01..=1000.0;

/// What a mock backend does with each accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 inference server: completions over SSE or JSON, WebSocket, health, metrics.
    Inference,
    /// Copy every byte back; on the client's EOF finish writing, then shut down the write side.
    Echo,
    /// Write `bytes` bytes of [`crate::tools::fleet::pattern_fill`]'s pattern, then close.
    Source { bytes: u64 },
    /// For each `\n`-terminated request line, write `bytes` pattern bytes; keep the connection.
    Respond { bytes: u64 },
    /// Read and discard until EOF, then reply with the byte count in decimal plus `\n`, close.
    Sink,
}

/// Everything needed to start one mock backend.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Backend name: sent as `x-backend`, used as the `backend` metrics label and in logs.
    pub name: String,
    /// Address to listen on; port 0 picks a free port (see
    /// [`crate::tools::fleet::MockBackend::addr`]).
    pub listen: SocketAddr,
    /// What to serve.
    pub mode: Mode,
    /// Token pace of one stream after its first token; `f64::INFINITY` means no pacing.
    pub tokens_per_sec: f64,
    /// Delay between getting a generation slot and writing the first token (prefill).
    pub ttft: Duration,
    /// Generations running at once; further requests wait in FIFO order.
    pub capacity: usize,
    /// Close a connection that sends no complete request for this long; `None` keeps idle
    /// connections forever (the balancer's idle-connection tests rely on that).
    pub idle_timeout: Option<Duration>,
    /// Threads of the runtime built by [`crate::tools::fleet::MockBackend::spawn`] and
    /// [`crate::tools::fleet::run_blocking`]; 1 means a current-thread runtime.
    pub worker_threads: usize,
    /// `/health` answers 503 "loading" for this long after start (a server loading a model).
    pub warmup: Duration,
    /// `/health` answers after this delay; zero = at once.
    pub health_delay: Duration,
    /// Which engine's series names `/metrics` uses.
    pub metrics_flavor: MetricsFlavor,
    /// Phantom streams that hold slots and KV and generate tokens without a client (load
    /// from clients that do not pass through the balancer); each restarts when it ends.
    pub external_load: usize,
    /// The backend runs this many times slower: TTFT and the time between tokens are
    /// multiplied by it (a throttled or older GPU). 1.0 = as configured.
    pub slowdown: f64,
    /// Completion length of requests without `max_tokens` (and of phantom streams).
    pub max_tokens_dist: TokenDist,
    /// KV-cache budget in tokens; `None` = unlimited (only the slots limit what runs).
    pub kv_tokens: Option<u64>,
    /// KV tokens of a request whose body carries no prompt the mock can count.
    pub prompt_tokens: u64,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            name: "mock".to_string(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            mode: Mode::Inference,
            tokens_per_sec: DEFAULT_TOKENS_PER_SEC,
            ttft: DEFAULT_TTFT,
            capacity: DEFAULT_CAPACITY,
            idle_timeout: None,
            worker_threads: DEFAULT_WORKER_THREADS,
            warmup: Duration::ZERO,
            health_delay: Duration::ZERO,
            metrics_flavor: MetricsFlavor::Vllm,
            external_load: 0,
            slowdown: 1.0,
            max_tokens_dist: TokenDist::default(),
            kv_tokens: None,
            prompt_tokens: DEFAULT_PROMPT_TOKENS,
        }
    }
}

impl MockOptions {
    /// Checks every field; returns what the simulated GPU is built from.
    pub(crate) fn validate(&self) -> Result<GpuSpec, FleetError> {
        let bad = |field, reason: &str| FleetError::InvalidOption {
            field,
            reason: reason.to_string(),
        };
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "name",
                "must be non-empty printable ASCII without spaces",
            ));
        }
        if self.tokens_per_sec.is_nan() || self.tokens_per_sec <= 0.0 {
            return Err(bad("tokens_per_sec", "must be a positive number"));
        }
        if !SLOWDOWN_RANGE.contains(&self.slowdown) {
            return Err(bad("slowdown", "must be a number from 0.01 to 1000"));
        }
        let interval = Duration::try_from_secs_f64(self.slowdown / self.tokens_per_sec)
            .ok()
            .filter(|i| *i <= MAX_INTERVAL)
            .ok_or_else(|| {
                bad(
                    "tokens_per_sec",
                    "must be at least one token an hour (after the slowdown)",
                )
            })?;
        let ttft = Duration::try_from_secs_f64(self.ttft.as_secs_f64() * self.slowdown)
            .ok()
            .filter(|t| *t <= MAX_TTFT)
            .ok_or_else(|| bad("ttft", "must be at most an hour (after the slowdown)"))?;
        if self.capacity == 0 || self.capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(bad("capacity", "must be at least 1 (and fit a semaphore)"));
        }
        if self.worker_threads == 0 {
            return Err(bad("worker_threads", "must be at least 1"));
        }
        if self.external_load > MAX_EXTERNAL_LOAD {
            return Err(bad("external_load", "must be at most 65536"));
        }
        if self.external_load > 0 && interval.is_zero() {
            return Err(bad(
                "external_load",
                "needs a finite tokens_per_sec (unpaced phantom streams would spin)",
            ));
        }
        self.max_tokens_dist
            .check()
            .map_err(|e| bad("max_tokens_dist", &e.to_string()))?;
        if self.prompt_tokens > MAX_TOKENS {
            return Err(bad("prompt_tokens", "must be at most 100000"));
        }
        let kv_tokens = match self.kv_tokens {
            None => None,
            Some(t) if t <= self.prompt_tokens => {
                return Err(bad(
                    "kv_tokens",
                    "must exceed prompt_tokens (a request without a prompt must fit)",
                ))
            }
            Some(t) => {
                Some(u32::try_from(t).map_err(|_| bad("kv_tokens", "must be at most 4294967295"))?)
            }
        };
        Ok(GpuSpec {
            capacity: self.capacity,
            ttft,
            interval,
            kv_tokens,
            lengths: self.max_tokens_dist,
            prompt_tokens: self.prompt_tokens,
        })
    }
}
