//! One relayed connection: the client socket, the backend socket, and what each direction has
//! received but not yet sent on.
//!
//! A `Conn` lives in the worker's slab from accept until every op that refers to its sockets
//! has completed; only then are the sockets closed and the backend count released (by dropping
//! the guard). It must never close a socket with an op still pending on it.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::balance::ActiveGuard;

use super::token::Side;

/// Bytes of one provided buffer still to be sent: `len` bytes from `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub bid: u16,
    pub offset: u32,
    pub len: u32,
}

/// One socket of a connection and the bytes queued to be written to it.
#[derive(Default)]
pub struct Half {
    pub fd: Option<OwnedFd>,
    /// A recv is pending on this socket.
    pub recv_armed: bool,
    /// The pending recv is multishot (the other side had nothing queued when it was armed).
    pub recv_multishot: bool,
    /// A cancel of the multishot recv was requested (bytes are queueing up for the other
    /// side); reading goes on with single recvs once it has ended.
    pub recv_paused: bool,
    /// The buffer ring ran dry while reading this socket; re-arm when buffers come back.
    pub recv_starved: bool,
    /// The peer sent FIN: nothing more will be read from this socket.
    pub eof: bool,
    /// A send to this socket is pending (one at a time keeps the byte order).
    pub send_inflight: bool,
    /// A shutdown(SHUT_WR) of this socket is pending or done.
    pub shut_started: bool,
    pub shut_done: bool,
    /// Received from the other socket, to be written to this one.
    pub outq: VecDeque<Chunk>,
    pub outq_bytes: u32,
}

impl Half {
    pub fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Every backend of the pool is full: waiting in the pool's queue (no op pending).
    Queued,
    /// Waiting for the backend connect to complete.
    Connecting,
    Relaying,
    /// Ending: ops are being cancelled; freed when none is left.
    Closing,
}

pub struct Conn {
    pub gen: u32,
    pub state: State,
    pub halves: [Half; 2],
    /// Ops submitted whose final completion has not arrived yet.
    pub ops: u32,
    pub pool: usize,
    /// Index of the backend being tried or relayed to.
    pub backend: usize,
    /// Backends already tried for this client (failed connects), excluded from the next pick.
    pub tried: Vec<usize>,
    /// Holds the backend's active count for as long as this connection uses the backend.
    pub guard: Option<ActiveGuard>,
    /// The one live timer of this connection (connect, queue, idle/age); timer entries with
    /// another deadline are stale and ignored.
    pub deadline: u64,
    pub connect_timed_out: bool,
    pub last_active: u64,
    pub idle_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// When the current connect (or the wait in the queue) started, in microseconds.
    pub started_us: u64,
    /// When the first bytes were sent to the backend (0 = not yet), for time to first byte.
    pub first_request_us: u64,
    pub first_byte_seen: bool,
    /// The client's address, kept only for pools that hash on it.
    pub client_addr: Option<Box<std::net::SocketAddr>>,
    /// Max connection age: from `age_soft` on, close at the first quiet second; at
    /// `age_hard`, close regardless (0 = no age limit).
    pub age_soft: u64,
    pub age_hard: u64,
}

impl Conn {
    pub fn new(
        gen: u32,
        client: OwnedFd,
        pool: usize,
        now: u64,
        idle_timeout_ms: u64,
        connect_timeout_ms: u64,
    ) -> Conn {
        let client = Half {
            fd: Some(client),
            ..Half::default()
        };
        Conn {
            gen,
            state: State::Connecting,
            halves: [client, Half::default()],
            ops: 0,
            pool,
            backend: 0,
            tried: Vec::new(),
            guard: None,
            deadline: 0,
            connect_timed_out: false,
            last_active: now,
            idle_timeout_ms,
            connect_timeout_ms,
            started_us: 0,
            first_request_us: 0,
            first_byte_seen: false,
            client_addr: None,
            age_soft: 0,
            age_hard: 0,
        }
    }

    pub fn half(&mut self, side: Side) -> &mut Half {
        &mut self.halves[side.idx()]
    }

    /// Both directions have ended: each side sent FIN and it was passed on to the other.
    pub fn both_directions_done(&self) -> bool {
        self.halves.iter().all(|h| h.eof && h.outq.is_empty())
            && self.halves.iter().all(|h| h.shut_done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle relayed connection costs its slab entry (plus a timer entry and a generation):
    /// keep it far below the 1 KiB per idle connection target.
    #[test]
    fn a_connection_slot_stays_small() {
        let slot = std::mem::size_of::<slab::Slab<Conn>>(); // the Slab header, not per entry
        let entry = std::mem::size_of::<Conn>();
        assert!(
            entry <= 320,
            "Conn grew to {entry} bytes (slab header {slot})"
        );
    }
}
