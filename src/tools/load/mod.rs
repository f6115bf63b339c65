//! `ringlb-load`: the load generator that ships with ringlb. It drives SSE and WebSocket token
//! streams, plain HTTP, TCP echo and idle connections at a target, closed loop (each connection
//! back to back) or open loop (`rate` requests/s on a fixed timetable, latency measured from
//! each intended start so a stall is not hidden by coordinated omission), and reports latency
//! percentiles, throughput, errors by kind and the spread over backends.
//!
//! Use [`run`] / [`run_blocking`] in process (tests, benchmarks) or the `ringlb-load` binary.
//! It must never drop a failed request from the report, and never panic on what a peer sends.

mod args;
mod chunked;
mod cli;
mod echo;
mod error;
mod event_stream;
mod histo;
mod http;
mod idle;
mod lengths;
mod options;
mod progress;
mod report;
mod request_log;
mod runner;
mod schedule;
mod sse;
mod stats;
mod websocket;
mod wire;

use std::future::Future;

pub use args::{parse_duration, LoadArgs};
pub use cli::{run_cli, write_json};
pub use error::{ErrorCounts, ErrorKind, LoadError, RequestError};
pub use histo::MetricSummary;
pub use lengths::Lengths;
pub use options::{
    Limit, LoadOptions, Mode, DEFAULT_BACKEND_HEADER, DEFAULT_HTTP_PATH, DEFAULT_MAX_TOKENS,
    DEFAULT_MESSAGE_SIZE, DEFAULT_PROMPT, DEFAULT_SEED, DEFAULT_SSE_PATH, DEFAULT_TIMEOUT,
    DEFAULT_WS_PATH,
};
pub use report::{ErrorSample, Report};
pub use request_log::RequestLogEntry;

/// Runs the load described by `opts` to its end.
pub async fn run(opts: LoadOptions) -> Result<Report, LoadError> {
    runner::execute(opts, std::future::pending()).await
}

/// Like [`run`], but stops early (abandoning requests in flight, counted as `cancelled`) when
/// `stop` completes.
pub async fn run_until<F>(opts: LoadOptions, stop: F) -> Result<Report, LoadError>
where
    F: Future<Output = ()>,
{
    runner::execute(opts, stop).await
}

/// [`run`] on a new multi-thread tokio runtime, for callers without one.
pub fn run_blocking(opts: LoadOptions) -> Result<Report, LoadError> {
    build_runtime()?.block_on(run(opts))
}

fn build_runtime() -> Result<tokio::runtime::Runtime, LoadError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ringlb-load")
        .build()
        .map_err(LoadError::Runtime)
}
