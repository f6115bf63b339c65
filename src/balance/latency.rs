//! Peak-EWMA latency estimates of one backend (connect time and time to first byte), in the
//! spirit of linkerd's / tower's `PeakEwma`: a sample above the current estimate replaces it at
//! once (a backend that turns slow is avoided within a few picks), a sample below pulls the
//! estimate toward it with weight `1 - exp(-elapsed / decay)`, and between samples the estimate
//! decays toward zero as `exp(-elapsed / decay)` (tower does that on every read; here the read
//! computes it without writing), so a backend that was slow and gets no traffic is tried again
//! after a few decay periods. `elapsed` is the time since the last sample of the same kind.
//!
//! Every worker samples every backend, so two samples of one backend can land at the same
//! instant. Each estimate is therefore one `AtomicU64` holding its value *and* its stamp, and a
//! sample replaces both with one compare-and-swap: a sample is never lost to a concurrent one
//! (the loser retries on the winner's value), a reader never pairs a value with another
//! value's stamp, and a sample of one kind never writes the other estimate. An earlier layout
//! (two values and one shared stamp in three atomics, both values rewritten by every sample)
//! lost 0.1-5% of the samples of two threads racing in a test, and, since a connect sample
//! reset the shared stamp, the first-byte sample of the same connection a moment later found
//! "no time has passed" and could never pull an estimate down. The price is 24 bits of value
//! (relative precision about 2^-16, far finer than a latency sample means) and a 40-bit
//! millisecond stamp (34 years of process uptime).
//!
//! Lock-free and allocation-free: a pick reads, a sample CASes. Reads must never write, and a
//! sample must never block or be dropped because another one raced it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// An estimate before its first sample: its value bits are a NaN pattern (sign bit set) that no
/// finite non-negative sample can produce.
const NO_SAMPLE: u64 = u64::MAX;
/// Low bits of a packed estimate: its stamp in `clock::now_ms()` milliseconds.
const STAMP_BITS: u32 = 40;
const STAMP_MAX: u64 = (1 << STAMP_BITS) - 1;
/// f32 mantissa bits dropped to make the value fit in the 24 bits above the stamp.
const DROPPED_BITS: u32 = 8;
/// Smallest move of an estimate that a sample stores: 1/4096 of it, 8 to 16 units in the last
/// place of the 15 mantissa bits kept, so that rounding errs by a few percent of a step.
const MIN_STEP: f64 = 1.0 / 4096.0;

/// Which estimate a sample feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    FirstByte,
}

/// The two estimates of one backend and the decay of the pool using it.
#[derive(Debug)]
pub(crate) struct Latency {
    connect: AtomicU64,
    first_byte: AtomicU64,
    decay_ms: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            connect: AtomicU64::new(NO_SAMPLE),
            first_byte: AtomicU64::new(NO_SAMPLE),
            // Replaced by the pool's `latency_decay` at every table build.
            decay_ms: AtomicU64::new(10_000),
        }
    }
}

impl Latency {
    /// Set on every table build, like the health policy: the newest table's pool wins.
    pub(crate) fn set_decay(&self, decay: Duration) {
        let ms = u64::try_from(decay.as_millis()).unwrap_or(u64::MAX).max(1);
        self.decay_ms.store(ms, Ordering::Relaxed);
    }

    /// (connect, first byte) estimates at `now_ms`; None where there is no sample yet.
    /// One `exp` per estimate, shared when both were stamped in the same millisecond (the
    /// common case for a fast backend, whose connect and first byte land together).
    #[inline]
    pub(crate) fn components_at(&self, now_ms: u64) -> (Option<f64>, Option<f64>) {
        let connect = unpack(self.connect.load(Ordering::Relaxed));
        let first_byte = unpack(self.first_byte.load(Ordering::Relaxed));
        if connect.is_none() && first_byte.is_none() {
            return (None, None);
        }
        let decay_ms = self.decay_ms.load(Ordering::Relaxed);
        let mut shared: Option<(u64, f64)> = None;
        let mut at_now = |(value, stamp): (f64, u64)| {
            let factor = match shared {
                Some((s, f)) if s == stamp => f,
                _ => {
                    let f = decay(now_ms.saturating_sub(stamp), decay_ms);
                    shared = Some((stamp, f));
                    f
                }
            };
            value * factor
        };
        (connect.map(&mut at_now), first_byte.map(&mut at_now))
    }

    /// Sum of the estimates that have samples; None if neither has one.
    pub(crate) fn estimate_ms_at(&self, now_ms: u64) -> Option<f64> {
        match self.components_at(now_ms) {
            (None, None) => None,
            (c, f) => Some(c.unwrap_or(0.0) + f.unwrap_or(0.0)),
        }
    }

    /// Feeds one sample of `kind` taken at `now_ms` (`clock::now_ms()`, or a worker's
    /// loop-turn time on the same clock, which may lag another worker's by a turn).
    pub(crate) fn observe_at(&self, kind: Kind, d: Duration, now_ms: u64) {
        let sample = d.as_secs_f64() * 1000.0;
        if !(sample.is_finite() && sample >= 0.0) {
            return;
        }
        let decay_ms = self.decay_ms.load(Ordering::Relaxed);
        let estimate = match kind {
            Kind::Connect => &self.connect,
            Kind::FirstByte => &self.first_byte,
        };
        let mut bits = estimate.load(Ordering::Relaxed);
        loop {
            let next = next_bits(bits, sample, now_ms, decay_ms);
            if next == bits {
                return;
            }
            // A racing sample got in first: redo this one on top of it, so neither is lost.
            match estimate.compare_exchange_weak(bits, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => bits = actual,
            }
        }
    }
}

/// The packed estimate after `sample` at `now_ms`.
fn next_bits(bits: u64, sample: f64, now_ms: u64, decay_ms: u64) -> u64 {
    let Some((value, stamp)) = unpack(bits) else {
        return pack(sample, now_ms);
    };
    // A sample stamped before the last one (another worker's loop turn began a little
    // earlier) counts as simultaneous: time never runs back.
    let factor = decay(now_ms.saturating_sub(stamp), decay_ms);
    let current = value * factor;
    let next = if sample > current {
        sample
    } else {
        current + (sample - current) * (1.0 - factor)
    };
    // A sample that moves the estimate by less than `MIN_STEP` is not stored: the old word
    // still stands for `current` exactly (its stamp carries the decay), and the pull of this
    // sample is deferred, not lost, since the next sample pulls with the time of both.
    // Storing every tiny step would round each to the stored precision, biased the same way
    // each time: a busy backend with a long decay would come down at the wrong rate (a test
    // below shows it). It also spares a shared write.
    if (next - current).abs() < current * MIN_STEP {
        bits
    } else {
        pack(next, now_ms.max(stamp))
    }
}

/// `exp(-elapsed / decay)`, without the `exp` when no time has passed.
#[inline]
fn decay(elapsed_ms: u64, decay_ms: u64) -> f64 {
    if elapsed_ms == 0 {
        return 1.0;
    }
    (-(elapsed_ms as f64) / decay_ms.max(1) as f64).exp()
}

/// Value (ms, finite, >= 0) as an f32 rounded to 24 bits, above a 40-bit stamp.
fn pack(value_ms: f64, stamp_ms: u64) -> u64 {
    let bits = (value_ms as f32).to_bits();
    // Round to nearest; a carry into the exponent is the correctly rounded value.
    let rounded = bits.saturating_add(1 << (DROPPED_BITS - 1)) >> DROPPED_BITS;
    (u64::from(rounded) << STAMP_BITS) | stamp_ms.min(STAMP_MAX)
}

/// (value ms, stamp ms), or None before the first sample.
#[inline]
fn unpack(bits: u64) -> Option<(f64, u64)> {
    if bits == NO_SAMPLE {
        return None;
    }
    let value = f32::from_bits(((bits >> STAMP_BITS) as u32) << DROPPED_BITS);
    Some((f64::from(value), bits & STAMP_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use Kind::{Connect, FirstByte};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn latency() -> Latency {
        let l = Latency::default();
        l.set_decay(Duration::from_secs(10));
        l
    }

    /// Within the 24-bit precision of a stored value.
    fn close(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|g| (g - want).abs() <= want.abs() * 1e-4)
    }

    #[test]
    fn first_sample_sets_and_peaks_jump() {
        let l = latency();
        assert_eq!(l.components_at(0), (None, None));
        l.observe_at(FirstByte, ms(20), 1000);
        assert_eq!(l.components_at(1000), (None, Some(20.0)));
        l.observe_at(FirstByte, ms(100), 1000);
        assert_eq!(
            l.components_at(1000),
            (None, Some(100.0)),
            "a peak replaces at once"
        );
    }

    #[test]
    fn lower_samples_pull_by_elapsed_time() {
        let l = latency();
        l.observe_at(FirstByte, ms(100), 0);
        l.observe_at(FirstByte, ms(20), 0);
        assert_eq!(l.estimate_ms_at(0), Some(100.0), "no time passed: no pull");
        l.observe_at(FirstByte, ms(90), 10_000);
        // current = 100/e = 36.8 < 90: a peak again.
        assert_eq!(l.estimate_ms_at(10_000), Some(90.0));
        l.observe_at(FirstByte, ms(20), 11_000);
        let d = (-0.1f64).exp();
        let want = 90.0 * d + (20.0 - 90.0 * d) * (1.0 - d);
        let got = l.estimate_ms_at(11_000);
        assert!(close(got, want), "{got:?} vs {want}");
    }

    #[test]
    fn decays_toward_zero_without_samples() {
        let l = latency();
        l.observe_at(FirstByte, ms(100), 0);
        assert!(close(l.estimate_ms_at(30_000), 100.0 * (-3.0f64).exp()));
        assert_eq!(
            l.estimate_ms_at(0),
            Some(100.0),
            "time going back does not grow it"
        );
    }

    #[test]
    fn each_kind_keeps_its_own_time() {
        let l = latency();
        l.observe_at(FirstByte, ms(80), 0);
        l.observe_at(Connect, Duration::from_micros(1500), 5000);
        let (c, f) = l.components_at(20_000);
        assert!(close(c, 1.5 * (-1.5f64).exp()));
        assert!(close(f, 80.0 * (-2.0f64).exp()));
        // A connect sample does not touch the first-byte estimate: the first byte of the same
        // connection, 1 ms later, still pulls by the 20 s since the last first byte.
        l.observe_at(Connect, Duration::from_micros(1500), 20_000);
        l.observe_at(FirstByte, ms(1), 20_001);
        let d = (-2.0001f64).exp();
        assert!(close(l.components_at(20_001).1, 80.0 * d * d + (1.0 - d)));
        // A sample stamped in the past neither moves the stamp back nor pulls.
        l.observe_at(Connect, ms(1), 1000);
        assert!(close(l.components_at(20_000).0, 1.5));
    }

    #[test]
    fn sums_what_it_has() {
        let l = latency();
        assert_eq!(l.estimate_ms_at(0), None);
        l.observe_at(FirstByte, ms(80), 0);
        assert_eq!(l.estimate_ms_at(0), Some(80.0));
        l.observe_at(Connect, Duration::from_micros(1500), 0);
        assert_eq!(l.estimate_ms_at(0), Some(81.5));
        assert_eq!(l.components_at(0), (Some(1.5), Some(80.0)));
    }

    #[test]
    fn steps_below_the_precision_still_add_up() {
        // A busy backend sampled every millisecond with a decay of 1000 s: each step is far
        // below the stored precision, yet after 100 s the estimate is down by e^-0.2 (e^-0.1
        // of decay, as much again of pull toward the zero samples), as with exact arithmetic.
        let l = Latency::default();
        l.set_decay(Duration::from_secs(1000));
        l.observe_at(FirstByte, ms(100), 0);
        for t in 1..=100_000 {
            l.observe_at(FirstByte, Duration::ZERO, t);
        }
        let got = l.estimate_ms_at(100_000).unwrap_or(0.0);
        let want = 100.0 * (-0.2f64).exp();
        assert!((got - want).abs() < want * 0.001, "{got} vs {want}");
    }

    /// Two workers sampling one backend at the same instant (time stands still, so nothing
    /// decays): every sample is a new peak of its kind, 0.1% above the last one of either
    /// thread, so after its own sample a thread must read that value back. Reading less
    /// means the other thread's write replaced it with a stale copy: a lost sample.
    #[test]
    fn racing_samples_of_two_workers_are_never_lost() {
        const ROUNDS: usize = 8;
        const SAMPLES: i32 = 10_000;
        let mut lost = 0;
        for _ in 0..ROUNDS {
            let latency = Arc::new(latency());
            let start = Arc::new(Barrier::new(2));
            let worker = |odd: i32| {
                let (latency, start) = (latency.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut lost = 0;
                    for i in 0..SAMPLES {
                        let want = 1.001f64.powi(2 * i + odd);
                        let kind = if i % 2 == 0 { Connect } else { FirstByte };
                        let d = Duration::from_secs_f64(want / 1000.0);
                        latency.observe_at(kind, d, 1000);
                        let (connect, first_byte) = latency.components_at(1000);
                        let read = if kind == Connect { connect } else { first_byte };
                        if read.is_none_or(|got| got < want * (1.0 - 1e-3)) {
                            lost += 1;
                        }
                    }
                    lost
                })
            };
            let (a, b) = (worker(0), worker(1));
            lost += a.join().unwrap() + b.join().unwrap();
        }
        let total = ROUNDS * 2 * SAMPLES as usize;
        assert_eq!(lost, 0, "{lost} of {total} samples were lost");
    }
}
