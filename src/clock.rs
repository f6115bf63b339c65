//! A process-wide monotonic clock in milliseconds, shared by workers and the backend table so
//! that deadlines written by one thread (a backend's "down until") are read right by another.
//! Must never go backwards and never take a lock.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call in this process (monotonic, never 0 after the first ms).
pub fn now_ms() -> u64 {
    let start = START.get_or_init(Instant::now);
    start.elapsed().as_millis() as u64
}

/// Microseconds on the same clock as [`now_ms`], for latency samples.
pub fn now_us() -> u64 {
    let start = START.get_or_init(Instant::now);
    start.elapsed().as_micros() as u64
}
