//! What a completion belongs to, packed into the 64-bit `user_data` of its submission:
//! op kind (8 bits) | slot generation (24 bits) | slot index (32 bits).
//!
//! The generation lets a late completion for a slot that has since been freed and reused be
//! recognised and dropped. Must never be ambiguous: every op the worker submits has a kind here.

/// Which socket of a connection an op targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Backend = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Backend,
            Side::Backend => Side::Client,
        }
    }

    pub fn idx(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Multishot accept; the index is the worker's listener index.
    Accept,
    /// The worker's wake-up eventfd read.
    Wake,
    /// An async cancel request; its completion carries nothing we need.
    Cancel,
    Connect,
    Recv(Side),
    Send(Side),
    Shutdown(Side),
    /// A queued client's hang-up watch (poll for FIN, reset or error).
    Poll,
    /// A reset watch on a socket ringlb is not reading (backpressure): poll for error/hang-up.
    Watch(Side),
}

const GEN_BITS: u32 = 24;
pub const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

impl Op {
    fn code(self) -> u64 {
        match self {
            Op::Accept => 1,
            Op::Wake => 2,
            Op::Cancel => 3,
            Op::Connect => 4,
            Op::Recv(s) => 5 + s as u64,
            Op::Send(s) => 7 + s as u64,
            Op::Shutdown(s) => 9 + s as u64,
            Op::Poll => 11,
            Op::Watch(s) => 12 + s as u64,
        }
    }

    fn from_code(code: u64) -> Option<Op> {
        Some(match code {
            1 => Op::Accept,
            2 => Op::Wake,
            3 => Op::Cancel,
            4 => Op::Connect,
            5 => Op::Recv(Side::Client),
            6 => Op::Recv(Side::Backend),
            7 => Op::Send(Side::Client),
            8 => Op::Send(Side::Backend),
            9 => Op::Shutdown(Side::Client),
            10 => Op::Shutdown(Side::Backend),
            11 => Op::Poll,
            12 => Op::Watch(Side::Client),
            13 => Op::Watch(Side::Backend),
            _ => return None,
        })
    }
}

/// Packs an op, a slot index and the slot's generation.
pub fn encode(op: Op, index: u32, gen: u32) -> u64 {
    (op.code() << 56) | (((gen & GEN_MASK) as u64) << 32) | index as u64
}

/// Unpacks what [`encode`] packed; `None` for a value we never submitted.
pub fn decode(user_data: u64) -> Option<(Op, u32, u32)> {
    let op = Op::from_code(user_data >> 56)?;
    let gen = ((user_data >> 32) as u32) & GEN_MASK;
    Some((op, user_data as u32, gen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_op() {
        let ops = [
            Op::Accept,
            Op::Wake,
            Op::Cancel,
            Op::Connect,
            Op::Recv(Side::Client),
            Op::Recv(Side::Backend),
            Op::Send(Side::Client),
            Op::Send(Side::Backend),
            Op::Shutdown(Side::Client),
            Op::Shutdown(Side::Backend),
            Op::Poll,
            Op::Watch(Side::Client),
            Op::Watch(Side::Backend),
        ];
        for op in ops {
            for (index, gen) in [(0, 0), (u32::MAX, GEN_MASK), (12345, 77)] {
                assert_eq!(decode(encode(op, index, gen)), Some((op, index, gen)));
            }
        }
    }

    #[test]
    fn generation_wraps_within_its_bits() {
        let ud = encode(Op::Connect, 3, GEN_MASK + 2);
        assert_eq!(decode(ud), Some((Op::Connect, 3, 1)));
        assert_eq!(decode(0), None);
    }
}
