//! The 48-byte header a soak client writes first on every stream, so the backend that ringlb
//! picks knows which stream it serves and what to do, and can report what it saw under the
//! stream's id. Must never accept a header whose check bytes do not match: a corrupted header
//! is a relay bug, not a stream to serve.

use serde::Serialize;

use super::error::SoakError;

/// Bytes of an encoded [`Header`].
pub const HEADER_LEN: usize = 48;
const MAGIC: &[u8; 4] = b"RLSK";
const VERSION: u8 = 1;
/// Flag bit: the client stops reading for a while mid-stream.
const FLAG_STALL: u8 = 1;

/// What a stream does; the backend derives the rest of its behaviour from the header's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The client sends its bytes and shuts down its write side; the backend answers with its
    /// pattern (part before, the rest after the client's EOF) and closes after that EOF.
    ClientHalfClose,
    /// The backend sends its pattern and shuts down first; the client keeps sending after the
    /// backend's EOF, then shuts down.
    BackendHalfClose,
    /// The backend echoes every byte; the client shuts down when it has sent everything.
    Echo,
    /// The client resets (SO_LINGER 0, close) after part of its bytes.
    ClientReset,
    /// The backend resets after part of its pattern.
    BackendReset,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ClientHalfClose,
        Kind::BackendHalfClose,
        Kind::Echo,
        Kind::ClientReset,
        Kind::BackendReset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ClientHalfClose => "client-half-close",
            Kind::BackendHalfClose => "backend-half-close",
            Kind::Echo => "echo",
            Kind::ClientReset => "client-reset",
            Kind::BackendReset => "backend-reset",
        }
    }

    /// Whether the stream is meant to end with both directions complete.
    pub fn completes(self) -> bool {
        !matches!(self, Kind::ClientReset | Kind::BackendReset)
    }

    fn code(self) -> u8 {
        match self {
            Kind::ClientHalfClose => 1,
            Kind::BackendHalfClose => 2,
            Kind::Echo => 3,
            Kind::ClientReset => 4,
            Kind::BackendReset => 5,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// One stream's identity and shape. `down_len` equals `up_len` for [`Kind::Echo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Header {
    pub id: u64,
    pub kind: Kind,
    pub stall: bool,
    /// Seed of the stream's patterns, pacing and cut points (drawn from the run's seed).
    pub seed: u64,
    /// Bytes the client sends after the header.
    pub up_len: u64,
    /// Bytes the backend sends.
    pub down_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5] = self.kind.code();
        b[6] = if self.stall { FLAG_STALL } else { 0 };
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&self.seed.to_le_bytes());
        b[24..32].copy_from_slice(&self.up_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.down_len.to_le_bytes());
        let check = check_bytes(&b[..40]);
        b[40..].copy_from_slice(&check);
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, SoakError> {
        if &b[..4] != MAGIC {
            return Err(SoakError::Header("bad magic"));
        }
        if b[40..] != check_bytes(&b[..40]) {
            return Err(SoakError::Header("check bytes do not match"));
        }
        if b[4] != VERSION {
            return Err(SoakError::Header("unknown version"));
        }
        let kind = Kind::from_code(b[5]).ok_or(SoakError::Header("unknown kind"))?;
        if b[6] & !FLAG_STALL != 0 || b[7] != 0 {
            return Err(SoakError::Header("unknown flags"));
        }
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let h = Header {
            id: word(8),
            kind,
            stall: b[6] & FLAG_STALL != 0,
            seed: word(16),
            up_len: word(24),
            down_len: word(32),
        };
        if kind == Kind::Echo && h.up_len != h.down_len {
            return Err(SoakError::Header("echo stream with different lengths"));
        }
        Ok(h)
    }
}

fn check_bytes(body: &[u8]) -> [u8; 8] {
    let hash = blake3::hash(body);
    hash.as_bytes()[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Header {
        Header {
            id: 0x0102_0304_0506_0708,
            kind,
            stall: kind == Kind::Echo,
            seed: u64::MAX - 7,
            up_len: 4 << 20,
            down_len: if kind == Kind::Echo { 4 << 20 } else { 17 },
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in Kind::ALL {
            let h = sample(kind);
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let enc = sample(Kind::ClientHalfClose).encode();
        for byte in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut b = enc;
                b[byte] ^= 1 << bit;
                assert!(
                    Header::decode(&b).is_err(),
                    "byte {byte} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn unknown_kind_and_flags_are_refused_even_with_a_valid_check() {
        let mut b = sample(Kind::BackendReset).encode();
        b[5] = 9;
        let check = check_bytes(&b[..40]);
        b[40..].copy_from_slice(&check);
        assert!(matches!(
            Header::decode(&b),
            Err(SoakError::Header("unknown kind"))
        ));
        let mut b = sample(Kind::BackendReset).encode();
        b[6] = 0x80;
        let check = check_bytes(&b[..40]);
        b[40..].copy_from_slice(&check);
        assert!(matches!(
            Header::decode(&b),
            Err(SoakError::Header("unknown flags"))
        ));
    }

    #[test]
    fn echo_must_have_equal_lengths() {
        let mut h = sample(Kind::Echo);
        h.down_len = 1;
        assert!(Header::decode(&h.encode()).is_err());
    }
}
