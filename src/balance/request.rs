//! What one pick takes and gives back: a [`PickRequest`] in, a [`Pick`] (a backend with a
//! connection slot already counted on it) or the reason there is none ([`NoPick`]) out.
//!
//! The caller owns the clock. `now_ms` is a `clock::now_ms()` value, or anything on that same
//! clock such as a worker's loop-turn time; the pick uses it for down deadlines, slow-start
//! ramps and latency decay and never reads a clock itself. It is a plain value, not a lazily
//! read one, because the engine reads the clock once per loop turn for its timers anyway: the
//! time is already paid for there, so laziness could only save a read that was made. Tests
//! pass any time they like, so every time-dependent pick is reproducible.

use std::net::SocketAddr;

use super::guard::ActiveGuard;

/// The inputs of one pick.
#[derive(Clone, Copy, Debug)]
pub struct PickRequest<'a> {
    /// The pool's index in the table (`Table::pool_index`).
    pub pool: usize,
    /// Pool positions already tried for this client (`Pick::backend` of failed attempts).
    pub exclude: &'a [usize],
    /// The client's address, used by `hash` (`PoolTable::needs_client_addr`); without it
    /// `hash` places the client at random. Other strategies ignore it.
    pub client: Option<SocketAddr>,
    /// A session key's hash from the client's first bytes (`hash_key = "header:..."` or
    /// `"json:..."`): `hash` places the client by it instead of by its address.
    pub session: Option<u64>,
    /// The time of the pick, in `clock::now_ms()` milliseconds.
    pub now_ms: u64,
}

impl<'a> PickRequest<'a> {
    /// A pick in `pool` at `now_ms`, with nothing excluded and no client address.
    pub fn new(pool: usize, now_ms: u64) -> Self {
        Self {
            pool,
            exclude: &[],
            client: None,
            session: None,
            now_ms,
        }
    }

    /// The same request, skipping the pool positions in `exclude`.
    pub fn excluding(self, exclude: &'a [usize]) -> Self {
        Self { exclude, ..self }
    }

    /// The same request, for a client at `client`.
    pub fn for_client(self, client: Option<SocketAddr>) -> Self {
        Self { client, ..self }
    }

    /// The same request, for a session whose key hashes to `session` (None: by address).
    pub fn for_session(self, session: Option<u64>) -> Self {
        Self { session, ..self }
    }
}

/// A chosen backend with a connection slot already counted on it.
#[derive(Debug)]
pub struct Pick {
    /// Index in the pool; pass it in `exclude` when retrying another backend.
    pub backend: usize,
    pub addr: SocketAddr,
    pub guard: ActiveGuard,
}

/// Why no backend could be picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPick {
    /// Some backend is up, weighted in and not excluded, but every such backend is at its
    /// `max_connections`: a slot frees when a stream ends, so the client may wait (queue).
    AllFull,
    /// No backend could take the client even with room: all down, drained, or already tried
    /// (or the pool does not exist or is empty).
    Unavailable,
}
