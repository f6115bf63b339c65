//! Slow start: a backend that comes back up, or joins a pool on a reload, starts at 10% of its
//! weight and ramps linearly to 100% over the pool's `slow_start`, so a cold inference server
//! (empty KV cache, compiling kernels) is not handed its full share the instant it appears.
//!
//! The ramp is kept in per mille and multiplied into the weight (`weight * permille`), never
//! divided out of it, so even a backend of weight 1 ramps and an effective weight is never 0.
//! How each strategy applies it:
//! - least_connections, power_of_two, least_latency: load is divided by `weight * permille`, so
//!   a ramping backend counts as loaded at a proportionally smaller number of streams;
//! - round_robin, random, and the draws of power_of_two (candidates) and of least_connections
//!   and least_latency (scan start): a drawn backend that is ramping is taken with probability
//!   permille/1000, otherwise the turn goes to the next draw, so its share of new streams
//!   follows the ramp even when every backend is idle;
//! - hash: the ring is not changed (keys must not move), the bounded-load capacity of a
//!   ramping backend is scaled by the ramp instead, so it keeps its own keys up to that smaller
//!   capacity and overflow walks on to the next backend.
//!
//! Nothing here reads the clock or writes shared memory; callers pass the time.

/// 100%, in per mille.
pub(crate) const FULL: u64 = 1000;
/// 10%: enough traffic to warm the backend (and, for least_latency, to measure it) without
/// the stampede a full share would bring.
pub(crate) const START: u64 = 100;

/// The ramp `elapsed_ms` into a slow start of `slow_start_ms` (> 0): 100 at 0, linear to 1000.
#[inline]
pub(crate) fn permille(elapsed_ms: u64, slow_start_ms: u64) -> u64 {
    if slow_start_ms == 0 || elapsed_ms >= slow_start_ms {
        return FULL;
    }
    let gained = u128::from(FULL - START) * u128::from(elapsed_ms) / u128::from(slow_start_ms);
    START + gained as u64
}

/// The effective weight shown in snapshots: `weight` scaled by the ramp, at least 1 unless the
/// backend is drained (weight 0). Strategies use the per-mille product, not this rounding.
pub(crate) fn display_weight(weight: u32, permille: u64) -> u32 {
    if weight == 0 {
        return 0;
    }
    let scaled = u64::from(weight) * permille / FULL;
    u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_linearly_from_ten_percent() {
        assert_eq!(permille(0, 10_000), 100);
        assert_eq!(permille(5000, 10_000), 550);
        assert_eq!(permille(9999, 10_000), 999);
        assert_eq!(permille(10_000, 10_000), 1000);
        assert_eq!(permille(u64::MAX - 1, u64::MAX), 999);
        assert_eq!(permille(5, 0), 1000);
    }

    #[test]
    fn display_weight_never_rounds_to_zero() {
        assert_eq!(display_weight(1, 100), 1);
        assert_eq!(display_weight(100, 100), 10);
        assert_eq!(display_weight(100, 550), 55);
        assert_eq!(display_weight(0, 1000), 0);
        assert_eq!(display_weight(u32::MAX, 1000), u32::MAX);
    }
}
