//! Mock GPU inference backends for the demo, the tests and the benchmarks of ringlb.
//!
//! A [`MockBackend`] is a small tokio HTTP/1.1 server that behaves like vLLM/SGLang/TGI as seen
//! from the network: `POST /v1/completions` streams paced tokens over SSE (chunked, keep-alive),
//! `GET /v1/stream` does the same over a WebSocket, `GET /metrics` exposes the engine's load
//! under vLLM's, SGLang's or TGI's series names, and a bounded number of generation slots (the
//! GPU's max-num-seqs) plus an optional KV-cache budget make overload show up as a queue and a
//! growing time to first token. For load-aware balancing tests and benchmarks it can also carry
//! phantom load from clients the balancer never sees, run slower than configured (an older
//! GPU), draw long-tailed completion lengths, and freeze generation (a hung GPU). `GET /health` can be made to warm up (503), fail, hang or
//! answer slowly, to test health checks against. Raw TCP modes (echo, source, respond, sink) serve byte-exact tests
//! and throughput benchmarks.
//!
//! This is control-plane/tooling code: it must never be linked into the balancer's data plane,
//! and it must never panic, leak or spin on what a client sends.

mod capacity;
mod completions;
mod conn;
mod error;
mod external;
mod generate;
mod health;
mod http;
mod inference;
mod metrics;
mod options;
mod pattern;
mod queue_time;
mod raw;
mod server;
mod sse;
mod stall;
mod stats;
mod websocket;

pub use crate::tools::lengths::{DistError, TokenDist, DEFAULT_MAX_TOKENS};
pub use error::FleetError;
pub use health::HealthMode;
pub use metrics::MetricsFlavor;
pub use options::{
    MockOptions, Mode, DEFAULT_CAPACITY, DEFAULT_PROMPT_TOKENS, DEFAULT_TOKENS_PER_SEC,
    DEFAULT_TTFT, DEFAULT_WORKER_THREADS,
};
pub use pattern::pattern_fill;
pub use server::{run_blocking, MockBackend};
pub use stats::{BackendStats, StatsSnapshot};
