//! Defaults and bounds of every config value, in one place so that the validator, the example
//! config and the engine agree. Values here must never be changed without updating
//! config/ringlb.toml, which documents them to operators.

use std::time::Duration;

/// Each worker owns one ring, its buffers and its connections; more than this many is a typo
/// (no machine ringlb targets has that many cores), and would exhaust memory before it helped.
pub const MAX_WORKERS: usize = 1024;

/// 4096 submission entries let one worker keep a few thousand sockets busy per loop turn
/// without a full queue forcing an early `io_uring_enter`, at a few hundred KiB of ring memory.
pub const DEFAULT_RING_ENTRIES: u32 = 4096;
/// Smaller rings make every busy loop turn a syscall; the kernel needs a power of two.
pub const MIN_RING_ENTRIES: u32 = 64;
/// The kernel's limit for submission queue entries (IORING_MAX_ENTRIES).
pub const MAX_RING_ENTRIES: u32 = 32768;

/// 128 KiB: measured against HAProxy on 1 MiB responses (scripts/bench.sh), 128 KiB buffers
/// cut ringlb's CPU per GB from ~1.3x HAProxy's to ~1.0x versus 32 KiB (fewer operations per
/// byte); a small token burst still takes one buffer, and idle streams hold none.
pub const DEFAULT_BUFFER_SIZE: u32 = 131_072;
/// One page: smaller buffers make each receive carry too little for its completion's cost.
pub const MIN_BUFFER_SIZE: u32 = 4096;
/// 1 MiB: beyond this a single buffer is mostly unused memory for streaming workloads.
pub const MAX_BUFFER_SIZE: u32 = 1_048_576;

/// 512 buffers per worker (64 MiB of address space, resident only as used) cover that many
/// sockets with received data in hand at once; the rest wait for a buffer to come back,
/// which bounds memory instead of failing.
pub const DEFAULT_BUFFER_COUNT: u32 = 512;
/// Fewer buffers than this stall a worker on a handful of busy sockets.
pub const MIN_BUFFER_COUNT: u32 = 16;
/// The kernel's limit for a provided-buffer ring, which also needs a power of two.
pub const MAX_BUFFER_COUNT: u32 = 32768;

/// 256 KiB (8 default buffers) in flight per direction absorbs a slow reader's hiccups
/// without letting one stalled client pin a large share of a worker's buffers.
pub const DEFAULT_MAX_UNSENT: u32 = 262_144;

/// Ten million connections is past any single host's memory; more is a typo.
pub const MAX_CONNECTIONS_LIMIT: u32 = 10_000_000;

/// Linux's default `somaxconn` since 5.4: a connect burst from a client fleet is queued
/// rather than refused, and the kernel caps larger values anyway.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// `listen(2)` takes a C `int`.
pub const MAX_BACKLOG: u32 = i32::MAX as u32;

/// Three seconds is far longer than a healthy local-network connect, yet short enough that
/// a dead GPU host costs a client only a short wait before a retry on another backend.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One hour: inference streams and WebSocket sessions legitimately stay quiet for minutes
/// (long prompts, queued requests), so only truly abandoned connections are closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// One minute of silence on a half-closed stream (like HAProxy's client-fin/server-fin): once
/// one side has said it is done, a backend that keeps its socket open without a byte, or a
/// client that never reads the close, is over; a minute still covers a long queue wait before
/// the first token of an answer to a client that half-closed after its request.
pub const DEFAULT_HALF_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longer timeouts are almost surely a unit typo ("3h" for "3s"), and the bound keeps
/// millisecond deadline arithmetic far from overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Two retries ride out one or two dead backends without turning a fleet-wide outage into a
/// long wait for every client.
pub const DEFAULT_RETRIES: u32 = 2;

/// Long enough for most generations to finish on a stop or a hand-over; systemd's stop
/// timeout (config/ringlb.service) must be above it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// A removed backend's streams may run this long: an hour covers the longest generations and
/// most realtime sessions, and still frees a decommissioned GPU host the same day.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Equal share per backend unless the operator says otherwise.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Large enough for any real ratio between GPUs, small enough that weight sums cannot
/// overflow a u64 however many backends a pool has.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// 0 means unlimited: the balancer, not a cap, spreads load unless the operator knows a
/// backend's concurrency limit.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 0;

/// Primary tier unless the operator sets up fallbacks.
pub const DEFAULT_TIER: u32 = 0;
/// Tiers are an ordering of a few fleets (primary, spillover, last resort); 256 levels is far
/// more than any fleet has, and small numbers keep typos ("tier = 10000") visible.
pub const MAX_TIER: u32 = 255;

/// No queue: a client that finds every backend full is refused at once, as before queueing
/// existed; operators opt in once they know how long clients will wait.
pub const DEFAULT_QUEUE_SIZE: u32 = 0;
/// A million waiting clients is beyond any single balancer's useful backlog; more is a typo.
pub const MAX_QUEUE_SIZE: u32 = 1_000_000;
/// Five seconds: longer than a typical stream slot takes to free under load, shorter than a
/// client's own request timeout, so a queued client mostly gets served, never hangs for long.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ten seconds, linkerd's default: long enough to smooth the noise of single requests, short
/// enough that a backend that recovers is trusted again within a minute.
pub const DEFAULT_LATENCY_DECAY: Duration = Duration::from_secs(10);

/// 1.25, as in the bounded-load paper's experiments and HAProxy's default (125): keys move
/// off their backend only when it carries 25% more than its share, which keeps most clients
/// on their KV cache while no backend runs far hotter than the rest.
pub const DEFAULT_HASH_BALANCE_FACTOR: f64 = 1.25;
/// Ten times the fair share is no bound at all in practice; beyond it, use no bound.
pub const MAX_HASH_BALANCE_FACTOR: f64 = 10.0;

/// Slow start off: backends get their full share as soon as they are up, as before; a ramp
/// only helps servers that are slow while cold, which the operator knows.
pub const DEFAULT_SLOW_START: Duration = Duration::ZERO;

/// No jitter unless asked: with `max_connection_age` off it has nothing to spread.
pub const DEFAULT_MAX_CONNECTION_AGE_JITTER: Duration = Duration::ZERO;

/// `peek_timeout`, `peek_max`, `peek_body_max`: defaults of the peek (reasons in
/// `crate::route::rules`, where the engine-facing defaults live).
pub const DEFAULT_PEEK_TIMEOUT: Duration = crate::route::DEFAULT_PEEK_TIMEOUT;
pub const DEFAULT_PEEK_MAX: u64 = crate::route::DEFAULT_PEEK_MAX as u64;
pub const DEFAULT_PEEK_BODY_MAX: u64 = crate::route::DEFAULT_PEEK_BODY_MAX as u64;
/// 1 KiB: less cannot hold a PROXY v2 header and a ClientHello, nor most request heads.
pub const MIN_PEEK_MAX: u64 = 1024;
/// 1 MiB of head is no request a client sends; more is a typo or an attack surface.
pub const MAX_PEEK_MAX: u64 = 1 << 20;
/// 16 MiB of body read per connection before deciding is already a lot of memory per client.
pub const MAX_PEEK_BODY_MAX: u64 = 16 << 20;
/// 64 MiB per worker: 256 connections peeking at a full default body (256 KiB) at once, or
/// 4096 at a full 16 KiB head; beyond it, new connections wait their turn to peek.
pub const DEFAULT_PEEK_MEMORY_MAX: u64 = 64 << 20;
/// 16 GiB per worker is more memory than such a host gives its balancer; more is a typo.
pub const MAX_PEEK_MEMORY_MAX: u64 = 16 << 30;
/// A `json:<key>` session key longer than this is a typo (the scanner keeps one key's bytes).
pub const MAX_SESSION_KEY_LEN: usize = 256;
