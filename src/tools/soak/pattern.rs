//! The bytes a soak stream carries and how they are fingerprinted. A pattern is a pure function
//! of (seed, offset), so a sender can produce it in chunks of any size and the driver can
//! regenerate any prefix to check what reached the other side of a cut stream. Must never
//! depend on chunk boundaries or on anything but the seed.

use serde::Serialize;

/// Size of the buffers the pattern is produced and read in.
pub const CHUNK: usize = 16 * 1024;

/// Word `i` of the pattern with `seed` (splitmix64 of the word index: fast, random access).
fn word(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern bytes at `offset..offset + buf.len()`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut out = buf;
    while !out.is_empty() {
        let bytes = word(seed, pos / 8).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(out.len());
        out[..n].copy_from_slice(&bytes[skip..skip + n]);
        out = &mut out[n..];
        pos += n as u64;
    }
}

/// Length and BLAKE3 hash of the bytes that went one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub len: u64,
    #[serde(serialize_with = "hex")]
    pub hash: [u8; 32],
}

fn hex<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&blake3::Hash::from_bytes(*h).to_hex())
}

/// A running [`Digest`].
#[derive(Default)]
pub struct Hashing {
    len: u64,
    hasher: blake3::Hasher,
}

impl Hashing {
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.hasher.update(bytes);
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn digest(&self) -> Digest {
        Digest {
            len: self.len,
            hash: *self.hasher.finalize().as_bytes(),
        }
    }
}

/// The digest of the first `len` bytes of the pattern with `seed`.
pub fn prefix_digest(seed: u64, len: u64) -> Digest {
    let mut h = Hashing::default();
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(CHUNK as u64) as usize;
        fill(seed, at, &mut buf[..n]);
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_boundaries_do_not_change_the_bytes() {
        let mut whole = vec![0u8; 1000];
        fill(42, 3, &mut whole);
        let mut pieces = vec![0u8; 1000];
        let mut at = 0;
        for n in [1, 7, 8, 9, 100, 875] {
            fill(42, 3 + at as u64, &mut pieces[at..at + n]);
            at += n;
        }
        assert_eq!(at, 1000);
        assert_eq!(whole, pieces);
    }

    #[test]
    fn seeds_and_offsets_give_different_bytes() {
        let (mut a, mut b, mut c) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        fill(1, 0, &mut a);
        fill(2, 0, &mut b);
        fill(1, 64, &mut c);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn prefix_digest_matches_hashing_the_filled_bytes() {
        let len = CHUNK as u64 * 2 + 5;
        let mut bytes = vec![0u8; len as usize];
        fill(9, 0, &mut bytes);
        let mut h = Hashing::default();
        h.update(&bytes);
        assert_eq!(prefix_digest(9, len), h.digest());
        assert_eq!(prefix_digest(9, 0).len, 0);
        assert_ne!(prefix_digest(9, len - 1), h.digest());
    }
}
