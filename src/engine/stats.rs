//! Counters each worker keeps about its own connections, read by tests, the demo and (later)
//! the admin endpoint. Each worker writes only its own, with relaxed atomics: never a lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

#[derive(Default)]
pub struct WorkerStats {
    pub accepted: AtomicU64,
    /// Connections that ended with both directions closed cleanly.
    pub completed: AtomicU64,
    pub resets: AtomicU64,
    pub connect_failures: AtomicU64,
    pub retries: AtomicU64,
    /// Streams moved to another backend after theirs failed before its first byte.
    pub replays: AtomicU64,
    pub first_byte_timeouts: AtomicU64,
    /// Clients closed at `peek_timeout`, or for another peek failure (peek_max, bad PROXY).
    pub peek_timeouts: AtomicU64,
    pub peek_rejects: AtomicU64,
    /// Bodies scanned to `peek_body_max` without the JSON members sought.
    pub peek_body_capped: AtomicU64,
    /// Clients that waited for peek memory before their first read.
    pub peek_waits: AtomicU64,
    /// Backend sockets that could not be opened for lack of descriptors, retried.
    pub socket_waits: AtomicU64,
    /// Clients closed because no backend of their pool could take them.
    pub no_backend: AtomicU64,
    pub idle_timeouts: AtomicU64,
    /// Streams closed for reaching the pool's max_connection_age.
    pub age_closes: AtomicU64,
    /// Clients that waited in a pool queue because every backend was full.
    pub queued: AtomicU64,
    /// Clients closed because every backend was full and the queue was full (or off).
    pub queue_full: AtomicU64,
    /// Queued clients closed after queue_timeout.
    pub queue_timeouts: AtomicU64,
    /// Bytes received (each relayed byte is counted once, on the side it arrived).
    pub bytes: AtomicU64,
    /// Times a recv stopped because the provided buffer ring was empty.
    pub buffer_starved: AtomicU64,
    /// Half-closed streams closed after half_close_timeout without a byte.
    pub half_close_timeouts: AtomicU64,
    /// Queued clients that hung up before a backend had room (never sent to a backend).
    pub queue_abandoned: AtomicU64,
    /// Streams cut with bytes still queued for a side (always with a reset).
    pub truncated: AtomicU64,
    /// Clients accepted past a connection limit and reset at once (normally they wait in the
    /// listen backlog; this counts those the kernel handed over before accepting paused).
    pub refused: AtomicU64,
    /// Accepts that failed (EMFILE, ENFILE, ENOMEM...); each pauses accepting briefly.
    pub accept_errors: AtomicU64,
    /// Sends that found their socket full: the direction's bytes moved to spill blocks.
    pub send_blocked: AtomicU64,
    /// Turns of the worker's loop (one submit and wait each): with the counters above, how
    /// much work each wake-up does.
    pub loop_turns: AtomicU64,
    /// Relaying streams found with no operation in flight and re-armed (see `stuck`): a bug.
    pub stuck_revived: AtomicU64,
    gauges: CachePadded<Gauges>,
}

#[derive(Default)]
struct Gauges {
    connections: AtomicU64,
    buffers_in_use: AtomicU64,
    buffers_warm: AtomicU64,
    spill_blocks: AtomicU64,
    peek_bytes: AtomicU64,
}

impl WorkerStats {
    pub(super) fn publish(
        &self,
        connections: usize,
        in_use: u32,
        warm: u32,
        spill: u32,
        peek_bytes: u64,
    ) {
        let g = &self.gauges;
        g.connections.store(connections as u64, Ordering::Relaxed);
        g.buffers_in_use.store(u64::from(in_use), Ordering::Relaxed);
        g.buffers_warm.store(u64::from(warm), Ordering::Relaxed);
        g.spill_blocks.store(u64::from(spill), Ordering::Relaxed);
        g.peek_bytes.store(peek_bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: r(&self.accepted),
            completed: r(&self.completed),
            resets: r(&self.resets),
            connect_failures: r(&self.connect_failures),
            retries: r(&self.retries),
            replays: r(&self.replays),
            first_byte_timeouts: r(&self.first_byte_timeouts),
            peek_timeouts: r(&self.peek_timeouts),
            peek_rejects: r(&self.peek_rejects),
            peek_body_capped: r(&self.peek_body_capped),
            peek_waits: r(&self.peek_waits),
            socket_waits: r(&self.socket_waits),
            no_backend: r(&self.no_backend),
            idle_timeouts: r(&self.idle_timeouts),
            queue_timeouts: r(&self.queue_timeouts),
            queue_full: r(&self.queue_full),
            queued: r(&self.queued),
            age_closes: r(&self.age_closes),
            bytes: r(&self.bytes),
            buffer_starved: r(&self.buffer_starved),
            half_close_timeouts: r(&self.half_close_timeouts),
            queue_abandoned: r(&self.queue_abandoned),
            truncated: r(&self.truncated),
            refused: r(&self.refused),
            accept_errors: r(&self.accept_errors),
            send_blocked: r(&self.send_blocked),
            loop_turns: r(&self.loop_turns),
            stuck_revived: r(&self.stuck_revived),
            connections: r(&self.gauges.connections),
            buffers_in_use: r(&self.gauges.buffers_in_use),
            buffers_warm: r(&self.gauges.buffers_warm),
            spill_blocks: r(&self.gauges.spill_blocks),
            peek_bytes: r(&self.gauges.peek_bytes),
            admitted: 0,
        }
    }
}

/// A copy of the counters, summed over workers by [`super::Server::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub accepted: u64,
    pub completed: u64,
    pub resets: u64,
    pub connect_failures: u64,
    pub retries: u64,
    pub replays: u64,
    pub first_byte_timeouts: u64,
    pub peek_timeouts: u64,
    pub peek_rejects: u64,
    pub peek_body_capped: u64,
    pub peek_waits: u64,
    pub socket_waits: u64,
    pub no_backend: u64,
    pub idle_timeouts: u64,
    pub age_closes: u64,
    pub queued: u64,
    pub queue_full: u64,
    pub queue_timeouts: u64,
    pub bytes: u64,
    pub buffer_starved: u64,
    pub half_close_timeouts: u64,
    pub queue_abandoned: u64,
    pub truncated: u64,
    pub refused: u64,
    pub accept_errors: u64,
    pub send_blocked: u64,
    pub loop_turns: u64,
    pub stuck_revived: u64,
    /// Connections in the workers' slabs at their last loop turn.
    pub connections: u64,
    /// Receive buffers held by the workers (received, not yet sent or copied).
    pub buffers_in_use: u64,
    /// Receive buffers that may be resident (in the ring, held, or used since the last trim).
    pub buffers_warm: u64,
    /// Spill blocks holding bytes for slow or stalled peers.
    pub spill_blocks: u64,
    /// Bytes held by connections being peeked at (content routing).
    pub peek_bytes: u64,
    /// Client connections counted against the connection limits right now.
    pub admitted: u64,
}

impl std::ops::Add for StatsSnapshot {
    type Output = StatsSnapshot;
    fn add(self, o: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted + o.accepted,
            completed: self.completed + o.completed,
            resets: self.resets + o.resets,
            connect_failures: self.connect_failures + o.connect_failures,
            retries: self.retries + o.retries,
            replays: self.replays + o.replays,
            first_byte_timeouts: self.first_byte_timeouts + o.first_byte_timeouts,
            peek_timeouts: self.peek_timeouts + o.peek_timeouts,
            peek_rejects: self.peek_rejects + o.peek_rejects,
            peek_body_capped: self.peek_body_capped + o.peek_body_capped,
            peek_waits: self.peek_waits + o.peek_waits,
            socket_waits: self.socket_waits + o.socket_waits,
            no_backend: self.no_backend + o.no_backend,
            idle_timeouts: self.idle_timeouts + o.idle_timeouts,
            queue_timeouts: self.queue_timeouts + o.queue_timeouts,
            queue_full: self.queue_full + o.queue_full,
            queued: self.queued + o.queued,
            age_closes: self.age_closes + o.age_closes,
            bytes: self.bytes + o.bytes,
            buffer_starved: self.buffer_starved + o.buffer_starved,
            half_close_timeouts: self.half_close_timeouts + o.half_close_timeouts,
            queue_abandoned: self.queue_abandoned + o.queue_abandoned,
            truncated: self.truncated + o.truncated,
            refused: self.refused + o.refused,
            accept_errors: self.accept_errors + o.accept_errors,
            send_blocked: self.send_blocked + o.send_blocked,
            loop_turns: self.loop_turns + o.loop_turns,
            stuck_revived: self.stuck_revived + o.stuck_revived,
            connections: self.connections + o.connections,
            buffers_in_use: self.buffers_in_use + o.buffers_in_use,
            buffers_warm: self.buffers_warm + o.buffers_warm,
            spill_blocks: self.spill_blocks + o.spill_blocks,
            peek_bytes: self.peek_bytes + o.peek_bytes,
            admitted: self.admitted + o.admitted,
        }
    }
}
