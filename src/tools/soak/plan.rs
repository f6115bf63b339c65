//! What each side of one stream does, derived from its [`Header`] alone, so the client and the
//! backend agree without talking: the pattern seeds, the pacing of each direction, where a side
//! waits for the other's EOF, where it resets, where the client stalls. Must never use anything
//! but the header: the backend has nothing else.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::header::{Header, Kind};
use super::pattern::CHUNK;

/// Directions at most this long may be paced like token streams (longer ones would take minutes).
pub const TOKEN_MAX_LEN: u64 = 16 * 1024;
/// Token-like pacing: bytes per write at most (a token or a few, framed).
const TOKEN_MAX_WRITE: usize = 64;
/// Token-like pacing: pause after each write at most (a decode step).
const TOKEN_MAX_PAUSE_MS: u64 = 20;
/// Bursty pacing: bytes per burst at most (a prefill answer, a batch of frames).
const BURST_MAX: usize = 64 * 1024;
/// Bursty pacing: pause after each burst at most.
const BURST_MAX_PAUSE_MS: u64 = 40;
/// A stalled client stops reading for this long at least...
pub const STALL_MIN: Duration = Duration::from_millis(500);
/// ...and at most (the brief's 0.5-5 s; a bound for the no-progress timeout too).
pub const STALL_MAX: Duration = Duration::from_secs(5);

/// How a sender spaces its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as the socket takes it, [`CHUNK`] bytes per write.
    Bulk,
    /// Small writes (1..=64 bytes), each followed by a pause of 0..=20 ms.
    Tokens,
    /// Bursts of 1 byte..64 KiB, each followed by a pause of 0..=40 ms.
    Bursty,
}

impl Pacing {
    /// Draws the pacing of a direction of `len` bytes.
    pub fn choose(rng: &mut impl Rng, len: u64) -> Pacing {
        if len <= TOKEN_MAX_LEN {
            if rng.gen_bool(0.6) {
                Pacing::Tokens
            } else {
                Pacing::Bulk
            }
        } else if rng.gen_bool(0.3) {
            Pacing::Bursty
        } else {
            Pacing::Bulk
        }
    }
}

/// The steps of one paced direction: how much to write next, then how long to pause.
pub struct Pacer {
    pacing: Pacing,
    rng: StdRng,
    /// Bytes left of the current burst (bursty pacing writes a burst in CHUNK pieces).
    burst_left: usize,
}

impl Pacer {
    pub fn new(pacing: Pacing, seed: u64) -> Pacer {
        Pacer {
            pacing,
            rng: StdRng::seed_from_u64(seed),
            burst_left: 0,
        }
    }

    /// The next write (1..=remaining bytes, at most [`CHUNK`]) and the pause after it.
    pub fn step(&mut self, remaining: u64) -> (usize, Duration) {
        let cap = remaining.min(CHUNK as u64) as usize;
        match self.pacing {
            Pacing::Bulk => (cap, Duration::ZERO),
            Pacing::Tokens => {
                let n = self.rng.gen_range(1..=TOKEN_MAX_WRITE).min(cap);
                (n, ms(self.rng.gen_range(0..=TOKEN_MAX_PAUSE_MS)))
            }
            Pacing::Bursty => {
                if self.burst_left == 0 {
                    self.burst_left = self.rng.gen_range(1..=BURST_MAX);
                }
                let n = self.burst_left.min(cap);
                self.burst_left -= n;
                let end_of_burst = self.burst_left == 0 || n as u64 == remaining;
                let pause = if end_of_burst {
                    self.burst_left = 0;
                    ms(self.rng.gen_range(0..=BURST_MAX_PAUSE_MS))
                } else {
                    Duration::ZERO
                };
                (n, pause)
            }
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One direction: whose bytes, how many, how paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub pattern: u64,
    pub len: u64,
    pub pacing: Pacing,
    pub pace_seed: u64,
}

/// Where the client stops reading, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub at: u64,
    pub pause: Duration,
}

/// Everything both sides of a stream do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub up: Flow,
    /// For an echo stream: the client's own pattern, coming back.
    pub down: Flow,
    pub echo: bool,
    /// The client writes this many bytes, then waits for the backend's EOF before the rest.
    pub client_gate: Option<u64>,
    /// The backend writes this many bytes, then waits for the client's EOF before the rest.
    pub backend_gate: Option<u64>,
    pub client_reset_at: Option<u64>,
    pub backend_reset_at: Option<u64>,
    pub stall: Option<Stall>,
}

impl Plan {
    pub fn derive(h: &Header) -> Plan {
        let mut rng = StdRng::seed_from_u64(h.seed);
        let flow = |rng: &mut StdRng, len: u64| Flow {
            pattern: rng.gen(),
            len,
            pacing: Pacing::choose(rng, len),
            pace_seed: rng.gen(),
        };
        let up = flow(&mut rng, h.up_len);
        let mut down = flow(&mut rng, h.down_len);
        let echo = h.kind == Kind::Echo;
        if echo {
            down = Flow {
                pacing: Pacing::Bulk,
                ..up
            };
        }
        let below = |rng: &mut StdRng, len: u64| if len == 0 { 0 } else { rng.gen_range(0..len) };
        let upto = |rng: &mut StdRng, len: u64| rng.gen_range(0..=len);
        let mut plan = Plan {
            up,
            down,
            echo,
            client_gate: None,
            backend_gate: None,
            client_reset_at: None,
            backend_reset_at: None,
            stall: None,
        };
        match h.kind {
            Kind::ClientHalfClose => plan.backend_gate = Some(upto(&mut rng, h.down_len)),
            Kind::BackendHalfClose => plan.client_gate = Some(upto(&mut rng, h.up_len)),
            Kind::Echo => {}
            Kind::ClientReset => {
                plan.backend_gate = Some(upto(&mut rng, h.down_len));
                plan.client_reset_at = Some(below(&mut rng, h.up_len));
            }
            Kind::BackendReset => plan.backend_reset_at = Some(below(&mut rng, h.down_len)),
        }
        if h.stall {
            let pause = rng.gen_range(STALL_MIN.as_millis() as u64..=STALL_MAX.as_millis() as u64);
            plan.stall = Some(Stall {
                at: upto(&mut rng, h.down_len / 2),
                pause: ms(pause),
            });
        }
        plan
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
