//! A cheap random source for picks: xorshift64* in a `thread_local`, so drawing costs a few
//! instructions and never writes memory another worker reads. Each thread is seeded once from
//! `rand` (or explicitly, for reproducible tests and benchmarks). Not cryptographic, and it must
//! never be: picks only need to be spread, not unpredictable.

use std::cell::Cell;

thread_local! {
    /// 0 = not seeded yet (xorshift never reaches 0 from a non-zero state).
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Makes this thread's pick randomness (power_of_two, random, least_connections and
/// least_latency scan starts, hash without a client address) reproducible from `seed`.
pub fn seed_thread_rng(seed: u64) {
    STATE.with(|state| state.set(non_zero(splitmix64(seed))));
}

/// The next 64 random bits of this thread.
#[inline]
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = non_zero(splitmix64(rand::random()));
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A number in `0..n` (0 if `n` is 0), by multiply-shift: the bias is below n / 2^64.
#[inline]
pub(crate) fn below(n: u64) -> u64 {
    ((u128::from(next_u64()) * u128::from(n)) >> 64) as u64
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn non_zero(x: u64) -> u64 {
    if x == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat_and_spread() {
        seed_thread_rng(7);
        let a: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        seed_thread_rng(7);
        let b: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        assert_eq!(a, b);
        seed_thread_rng(0);
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            hits[below(10) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (900..1100).contains(&h)), "{hits:?}");
        assert_eq!(below(0), 0);
    }
}
