//! The deterministic pseudo-random byte pattern of the `source` and `respond` modes, public so
//! tests and the load tool can check every byte they receive.
//!
//! Byte `i` of the pattern depends only on `i`, so any slice can be produced or checked on its
//! own. Must never change between versions: recorded benchmark checks rely on it.

/// SplitMix64's finaliser: cheap and well mixed, so the pattern has no short period that could
/// hide a relayed-twice or skipped block.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with pattern bytes `offset .. offset + buf.len()`.
pub fn pattern_fill(offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut rest = buf;
    while !rest.is_empty() {
        let word = mix(pos / 8).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(rest.len());
        rest[..n].copy_from_slice(&word[start..start + n]);
        rest = &mut rest[n..];
        pos += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_agree_with_the_whole() {
        let mut whole = vec![0u8; 100];
        pattern_fill(0, &mut whole);
        for (start, len) in [(0, 1), (3, 13), (8, 8), (61, 39)] {
            let mut part = vec![0u8; len];
            pattern_fill(start as u64, &mut part);
            assert_eq!(part, whole[start..start + len]);
        }
        assert_ne!(whole[..8], whole[8..16]);
    }
}
