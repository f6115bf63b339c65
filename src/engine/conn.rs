//! One relayed connection and the state machine of its two halves.
//!
//! A `Conn` is in one [`Phase`]; while relaying, each [`Half`] (one socket) has a receive state
//! (what is armed to read from it), a send state (what is in flight to it), a shutdown state,
//! and the bytes received from the other socket that wait to be written to it. Completions only
//! record what happened in these states; what to submit next is decided here, by the `*_plan`
//! and `*_due` functions, and carried out by `Worker::drive` — one place for every transition.
//!
//! Memory rule: bytes wait in receive buffers (shared by the whole worker) only while their
//! peer keeps up; once a send to a socket cannot go out whole, that socket is `blocked` and its
//! bytes move to spill blocks of their own, so a stalled peer never pins receive buffers.
//! A `Conn` lives in the worker's slab until every op that refers to its sockets or memory has
//! completed; it must never close a socket or free memory with an op still pending on it.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::balance::{ActiveGuard, CloseReason};

use super::token::Side;

/// Bytes received while a send is in flight and at most this long are copied to a spill block
/// instead of holding a whole receive buffer: token events are tens to hundreds of bytes, and
/// copying them costs less than the buffer they would pin.
pub const SMALL_COPY: u32 = 16 * 1024;
/// Receive buffers one direction may hold queued behind its send (bulk at the peer's pace);
/// past this, further bytes are copied to spill blocks.
pub const MAX_RING_CHUNKS: usize = 2;

/// A time that never came (`acked_at` before the first sample).
pub const NEVER: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Every backend of the pool is full: waiting in the pool's queue, its client watched for a
    /// hang-up.
    Queued,
    /// Reading the client's first bytes to pick its pool (a listener with routing rules, a
    /// PROXY header or a session key); nothing is connected yet.
    Peeking,
    /// Waiting for the backend connect to complete.
    Connecting,
    Relaying,
    /// The backend failed before its first byte: its ops are being cancelled; once none is
    /// left the client's first bytes go to another backend (see `replay`).
    Replaying,
    /// Ending: ops are being cancelled; freed when none is left.
    Closing,
}

/// Reading from one socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// Nothing armed (backpressure, or not relaying yet).
    Off,
    /// A multishot recv: the other side had nothing queued when it was armed.
    Multi,
    /// The multishot recv is being cancelled (bytes started queueing); it may still deliver.
    Cancelling,
    /// One recv of one buffer: bytes are queued for the other side, so stop exactly at the limit.
    Single,
    /// The receive buffers ran out; re-armed when some come back.
    Starved,
    /// The peer sent FIN: nothing more will be read.
    Eof,
}

/// Writing to one socket (one send at a time keeps the byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Send {
    Idle,
    /// From a receive buffer, without waiting: completes within the turn it was submitted.
    Now,
    /// From a spill block, waiting for room in the socket.
    Waiting,
}

/// Passing the other side's FIN on to this socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shut {
    Open,
    Pending,
    Done,
}

/// Where a chunk's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mem {
    /// A receive buffer (by buffer id).
    Ring(u16),
    /// A spill block (by block id) that this chunk alone uses.
    Spill(u32),
}

/// Bytes still to be sent: `len` bytes of `mem` from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub mem: Mem,
    pub offset: u32,
    pub len: u32,
}

/// How to read, when reading is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvPlan {
    Multi,
    Single,
}

/// One socket of a connection and the bytes queued to be written to it.
pub struct Half {
    pub fd: Option<OwnedFd>,
    pub recv: Recv,
    pub send: Send,
    /// Bytes of the head chunk that the pending send covers.
    pub inflight: u32,
    pub shut: Shut,
    /// A send to this socket could not go out whole: its bytes go to spill blocks until
    /// everything queued is out.
    pub blocked: bool,
    /// The last read from this socket filled its buffer or left bytes waiting: a bulk sender,
    /// read with single recvs (a multishot would drain its socket into every free buffer).
    pub bulk: bool,
    /// Received from the other socket, to be written to this one, oldest first.
    pub outq: VecDeque<Chunk>,
    pub outq_bytes: u32,
    /// Bytes received from this socket so far (for the access log).
    pub received: u64,
    /// The reset watch on this socket while ringlb does not read it.
    pub watch: Watch,
}

/// Watching a socket ringlb is not reading (backpressure) for a reset: with no recv armed, a
/// peer's RST would go unseen until reading resumes (epoll reports errors unasked; io_uring
/// needs a poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    Off,
    /// A poll for POLLERR|POLLHUP is in flight.
    Armed,
    /// It fired with a hang-up that was no error (both directions shut): not re-armed.
    Spent,
}

impl Half {
    pub(super) fn new(fd: Option<OwnedFd>) -> Half {
        Half {
            fd,
            recv: Recv::Off,
            send: Send::Idle,
            inflight: 0,
            shut: Shut::Open,
            received: 0,
            watch: Watch::Off,
            blocked: false,
            bulk: false,
            outq: VecDeque::new(),
            outq_bytes: 0,
        }
    }

    pub fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Nothing in flight to this socket and nothing waiting for it.
    pub fn drained(&self) -> bool {
        self.send == Send::Idle && self.outq.is_empty()
    }

    /// Bytes queued behind the send in flight.
    pub fn queued_behind(&self) -> u32 {
        self.outq_bytes - self.inflight.min(self.outq_bytes)
    }

    /// True if `len` received bytes for this socket should be copied to a spill block rather
    /// than queued in their receive buffer.
    pub fn spills(&self, len: u32) -> bool {
        if self.blocked {
            return true;
        }
        if self.drained() {
            return false;
        }
        // A receive buffer may only wait behind sends that never wait (from receive buffers):
        // behind a spill block, whose send waits for the peer, it could be pinned for as long
        // as the peer stalls (the soak found the ring drained that way). So a queue is always
        // receive buffers, then spill blocks: one spill block queued means its tail is one.
        if matches!(self.outq.back(), Some(c) if matches!(c.mem, Mem::Spill(_))) {
            return true;
        }
        len <= SMALL_COPY || self.outq.len() >= MAX_RING_CHUNKS
    }
}

pub struct Conn {
    pub gen: u32,
    /// This worker's sequence number for the connection: with the worker id, the connection id
    /// of log lines.
    pub seq: u64,
    /// When the client was accepted (ms).
    pub born: u64,
    /// Which side sent FIN first (a finished stream's close reason).
    pub first_fin: Option<Side>,
    /// Why it is closing, once it is.
    pub reason: Option<CloseReason>,
    /// When the last access log progress line for it was written, in ms after `born`.
    pub logged_at: u32,
    pub phase: Phase,
    pub halves: [Half; 2],
    /// Ops submitted whose final completion has not arrived yet.
    pub ops: u32,
    pub pool: usize,
    /// The worker's listener the client came in on.
    pub listener: u16,
    /// Index of the backend being tried or relayed to.
    pub backend: usize,
    /// Backends already tried for this client (failed connects), excluded from the next pick;
    /// by address, which a reload does not change.
    pub tried: Vec<std::net::SocketAddr>,
    /// Holds the backend's active count for as long as this connection uses the backend.
    pub guard: Option<ActiveGuard>,
    /// The one live timer of this connection (connect, queue, idle/age); timer entries with
    /// another deadline are stale and ignored.
    pub deadline: u64,
    pub connect_timed_out: bool,
    pub last_active: u64,
    /// Bytes both peers had acknowledged when the relaying deadline last fired, and when
    /// (`acked_at` = [`NEVER`]: never sampled): if that grew meanwhile, a peer is still taking
    /// bytes from our send buffers, so the stream is not idle.
    pub acked_seen: u64,
    pub acked_at: u64,
    pub idle_timeout_ms: u64,
    pub half_close_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// When the current connect (or the wait in the queue) started, in microseconds.
    pub started_us: u64,
    /// When the first bytes were sent to the backend (0 = not yet), for time to first byte.
    pub first_request_us: u64,
    pub first_byte_seen: bool,
    /// The client's bytes so far, while the backend has sent none and they fit the pool's
    /// `replay_buffer`; None before the first client byte, and for good once they no longer
    /// fit or the backend answered.
    #[allow(clippy::box_collection)] // 8 bytes in every connection slot instead of 24
    pub replay: Option<Box<Vec<u8>>>,
    /// The client's first bytes and the routing decision in progress, while peeking.
    pub peek: Option<Box<super::peek::PeekState>>,
    /// The pool's `first_byte_timeout` when the stream started (0 = off), in ms.
    pub first_byte_timeout_ms: u32,
    /// The client's address, kept only for pools that hash on it.
    pub client_addr: Option<Box<std::net::SocketAddr>>,
    /// Max connection age: from `age_soft` on, close at the first quiet second; at
    /// `age_hard`, close regardless (0 = no age limit).
    pub age_soft: u64,
    pub age_hard: u64,
}

impl Conn {
    pub fn new(gen: u32, client: OwnedFd, pool: usize, listener: u16, now: u64) -> Conn {
        Conn {
            gen,
            seq: 0,
            born: now,
            first_fin: None,
            reason: None,
            logged_at: 0,
            phase: Phase::Connecting,
            halves: [Half::new(Some(client)), Half::new(None)],
            ops: 0,
            pool,
            listener,
            backend: 0,
            tried: Vec::new(),
            guard: None,
            deadline: 0,
            connect_timed_out: false,
            last_active: now,
            acked_seen: 0,
            acked_at: NEVER,
            idle_timeout_ms: 0,
            half_close_timeout_ms: 0,
            connect_timeout_ms: 0,
            started_us: 0,
            first_request_us: 0,
            first_byte_seen: false,
            replay: None,
            peek: None,
            first_byte_timeout_ms: 0,
            client_addr: None,
            age_soft: 0,
            age_hard: 0,
        }
    }

    pub fn half(&mut self, side: Side) -> &mut Half {
        &mut self.halves[side.idx()]
    }

    pub fn half_ref(&self, side: Side) -> &Half {
        &self.halves[side.idx()]
    }

    /// The chunk to send to `side` now, if a send is due.
    pub fn send_plan(&self, side: Side) -> Option<Chunk> {
        let h = self.half_ref(side);
        if self.phase != Phase::Relaying || h.send != Send::Idle || h.fd.is_none() {
            return None;
        }
        h.outq.front().copied()
    }

    /// How to read from `side` now, if reading is due: not while armed, finished or starved,
    /// nor while `max_unsent` bytes already wait for the other side (backpressure). Multishot
    /// only for a side that trickles (token streams, idle sessions) into an idle peer.
    pub fn recv_plan(&self, side: Side, max_unsent: u32) -> Option<RecvPlan> {
        let (h, dst) = (self.half_ref(side), self.half_ref(side.other()));
        if self.phase != Phase::Relaying || h.recv != Recv::Off || h.fd.is_none() {
            return None;
        }
        if dst.outq_bytes >= max_unsent {
            return None;
        }
        Some(if dst.drained() && !dst.blocked && !h.bulk {
            RecvPlan::Multi
        } else {
            RecvPlan::Single
        })
    }

    /// True if `side` should be watched for a reset: ringlb holds off reading it because the
    /// other side has `max_unsent` queued, and no watch is on it yet.
    pub fn watch_due(&self, side: Side, max_unsent: u32) -> bool {
        let (h, dst) = (self.half_ref(side), self.half_ref(side.other()));
        self.phase == Phase::Relaying
            && h.recv == Recv::Off
            && h.watch == Watch::Off
            && h.fd.is_some()
            && dst.outq_bytes >= max_unsent
    }

    /// True if `side`'s multishot recv should give way to single recvs: bytes queue up behind
    /// the other side's send, and a multishot would take a whole socket buffer before reacting.
    pub fn multishot_overruns(&self, side: Side) -> bool {
        self.half_ref(side).recv == Recv::Multi && self.half_ref(side.other()).queued_behind() > 0
    }

    /// True if the other side's FIN should now be passed on to `side`: everything it sent
    /// before the FIN has been written.
    pub fn shutdown_due(&self, side: Side) -> bool {
        let h = self.half_ref(side);
        self.phase == Phase::Relaying
            && self.half_ref(side.other()).recv == Recv::Eof
            && h.shut == Shut::Open
            && h.drained()
            && h.fd.is_some()
    }

    /// Both directions have ended: each side sent FIN and it was passed on to the other.
    pub fn finished(&self) -> bool {
        self.halves
            .iter()
            .all(|h| h.recv == Recv::Eof && h.shut == Shut::Done)
    }

    /// One side has sent FIN: the stream is half closed.
    pub fn half_closed(&self) -> bool {
        self.halves.iter().any(|h| h.recv == Recv::Eof)
    }

    /// Bytes received and not yet written to the other side: closing now discards them.
    pub fn holds_bytes(&self) -> bool {
        self.halves.iter().any(|h| !h.outq.is_empty())
    }

    /// How long this stream may stay without a byte in either direction.
    pub fn idle_limit_ms(&self) -> u64 {
        if self.half_closed() {
            self.idle_timeout_ms.min(self.half_close_timeout_ms)
        } else {
            self.idle_timeout_ms
        }
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
