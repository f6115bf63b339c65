//! The session hash: what `hash_key = "header:<name>"` and `"json:<key>"` turn a peeked value
//! into, for the `hash` strategy to place the session on a backend.
//!
//! It is 64-bit FNV-1a over the value's bytes, fixed here once and for all: the same session
//! id must land on the same backend in every ringlb process, across restarts, versions and
//! hosts (several balancers in front of one fleet must agree), which `std`'s `DefaultHasher`
//! does not promise. It must never change without a note to operators: every session would
//! move to another backend and lose its KV cache.

/// FNV-1a offset basis (64-bit).
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime (64-bit).
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, then a final avalanche (the murmur3 fmix64 finaliser) so that values
/// differing only in their last byte, like `user-1` and `user-2`, are far apart on the ring.
pub fn session_hash(bytes: &[u8]) -> u64 {
    let mut h = OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::session_hash;

    #[test]
    fn is_pinned() {
        // These values are a contract (see the module doc): a change moves every session.
        assert_eq!(session_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(session_hash(b"user-1"), 0x41a2_fca5_c684_01c5);
        assert_ne!(session_hash(b"user-1"), session_hash(b"user-2"));
    }
}
