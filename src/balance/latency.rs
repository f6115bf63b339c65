//! Peak-EWMA latency estimates of one backend (connect time and time to first byte), in the
//! spirit of linkerd's / tower's `PeakEwma`: a sample above the current estimate replaces it at
//! once (a backend that turns slow is avoided within a few picks), a sample below pulls the
//! estimate toward it with weight `1 - exp(-elapsed / decay)`, and between samples the estimate
//! decays toward zero as `exp(-elapsed / decay)` (tower does that on every read; here the read
//! computes it without writing), so a backend that was slow and gets no traffic is tried again
//! after a few decay periods.
//!
//! Lock-free: the estimate is an `AtomicU64` holding f64 bits next to an `AtomicU64` stamp.
//! Two samples racing on one backend may lose one of them, and a reader may pair a new value
//! with an old stamp for an instant; both only nudge an estimate that the next sample corrects,
//! which is the price of never locking on the connection path. Reads must never write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bits of the estimate before any sample: a NaN pattern no real sample can produce.
const NO_SAMPLE: u64 = u64::MAX;

/// One decaying peak estimate, in milliseconds.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    bits: AtomicU64,
    stamp_ms: AtomicU64,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self {
            bits: AtomicU64::new(NO_SAMPLE),
            stamp_ms: AtomicU64::new(0),
        }
    }
}

impl PeakEwma {
    /// The estimate at `now_ms`, None before the first sample.
    #[inline]
    pub(crate) fn current_at(&self, now_ms: u64, decay_ms: f64) -> Option<f64> {
        let bits = self.bits.load(Ordering::Relaxed);
        if bits == NO_SAMPLE {
            return None;
        }
        let elapsed = now_ms.saturating_sub(self.stamp_ms.load(Ordering::Relaxed));
        Some(f64::from_bits(bits) * decay_factor(elapsed, decay_ms))
    }

    /// Folds in one sample of `sample_ms` taken at `now_ms`.
    pub(crate) fn observe_at(&self, sample_ms: f64, now_ms: u64, decay_ms: f64) {
        if !(sample_ms.is_finite() && sample_ms >= 0.0) {
            return;
        }
        let bits = self.bits.load(Ordering::Relaxed);
        let next = if bits == NO_SAMPLE {
            sample_ms
        } else {
            let elapsed = now_ms.saturating_sub(self.stamp_ms.load(Ordering::Relaxed));
            let decay = decay_factor(elapsed, decay_ms);
            let current = f64::from_bits(bits) * decay;
            if sample_ms > current {
                sample_ms
            } else {
                current + (sample_ms - current) * (1.0 - decay)
            }
        };
        self.bits.store(next.to_bits(), Ordering::Relaxed);
        self.stamp_ms.store(now_ms, Ordering::Relaxed);
    }
}

#[inline]
fn decay_factor(elapsed_ms: u64, decay_ms: f64) -> f64 {
    if elapsed_ms == 0 {
        1.0
    } else {
        (-(elapsed_ms as f64) / decay_ms).exp()
    }
}

/// Both estimates of one backend and the decay time constant of the pool using it.
#[derive(Debug)]
pub(crate) struct Latency {
    pub(crate) connect: PeakEwma,
    pub(crate) first_byte: PeakEwma,
    decay_ms: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            connect: PeakEwma::default(),
            first_byte: PeakEwma::default(),
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

    #[inline]
    pub(crate) fn decay_ms(&self) -> f64 {
        self.decay_ms.load(Ordering::Relaxed) as f64
    }

    pub(crate) fn observe_connect_at(&self, d: Duration, now_ms: u64) {
        self.connect.observe_at(ms(d), now_ms, self.decay_ms());
    }

    pub(crate) fn observe_first_byte_at(&self, d: Duration, now_ms: u64) {
        self.first_byte.observe_at(ms(d), now_ms, self.decay_ms());
    }

    /// (connect, first byte) estimates at `now_ms`.
    #[inline]
    pub(crate) fn components_at(&self, now_ms: u64) -> (Option<f64>, Option<f64>) {
        let decay = self.decay_ms();
        (
            self.connect.current_at(now_ms, decay),
            self.first_byte.current_at(now_ms, decay),
        )
    }

    /// Sum of the estimates that have samples; None if neither has one.
    pub(crate) fn estimate_ms_at(&self, now_ms: u64) -> Option<f64> {
        match self.components_at(now_ms) {
            (None, None) => None,
            (c, f) => Some(c.unwrap_or(0.0) + f.unwrap_or(0.0)),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: f64 = 10_000.0;

    #[test]
    fn first_sample_sets_and_peaks_jump() {
        let e = PeakEwma::default();
        assert_eq!(e.current_at(0, DECAY), None);
        e.observe_at(20.0, 1000, DECAY);
        assert_eq!(e.current_at(1000, DECAY), Some(20.0));
        e.observe_at(100.0, 1000, DECAY);
        assert_eq!(
            e.current_at(1000, DECAY),
            Some(100.0),
            "a peak replaces at once"
        );
    }

    #[test]
    fn lower_samples_pull_by_elapsed_time() {
        let e = PeakEwma::default();
        e.observe_at(100.0, 0, DECAY);
        e.observe_at(20.0, 0, DECAY);
        assert_eq!(
            e.current_at(0, DECAY),
            Some(100.0),
            "no time passed: no pull"
        );
        e.observe_at(90.0, 10_000, DECAY);
        // current = 100/e = 36.8 < 90: a peak again.
        assert_eq!(e.current_at(10_000, DECAY), Some(90.0));
        e.observe_at(20.0, 11_000, DECAY);
        let d = (-0.1f64).exp();
        let want = 90.0 * d + (20.0 - 90.0 * d) * (1.0 - d);
        let got = e.current_at(11_000, DECAY).unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(got > 20.0 && got < 90.0);
    }

    #[test]
    fn decays_toward_zero_without_samples() {
        let e = PeakEwma::default();
        e.observe_at(100.0, 0, DECAY);
        let later = e.current_at(30_000, DECAY).unwrap();
        assert!((later - 100.0 * (-3.0f64).exp()).abs() < 1e-9);
        assert_eq!(
            e.current_at(0, DECAY),
            Some(100.0),
            "time going back does not grow it"
        );
    }

    #[test]
    fn garbage_samples_are_ignored() {
        let e = PeakEwma::default();
        e.observe_at(f64::NAN, 0, DECAY);
        e.observe_at(-1.0, 0, DECAY);
        e.observe_at(f64::INFINITY, 0, DECAY);
        assert_eq!(e.current_at(0, DECAY), None);
    }

    #[test]
    fn latency_sums_what_it_has() {
        let l = Latency::default();
        l.set_decay(Duration::from_secs(10));
        assert_eq!(l.estimate_ms_at(0), None);
        l.observe_first_byte_at(Duration::from_millis(80), 0);
        assert_eq!(l.estimate_ms_at(0), Some(80.0));
        l.observe_connect_at(Duration::from_micros(1500), 0);
        assert_eq!(l.estimate_ms_at(0), Some(81.5));
        assert_eq!(l.components_at(0), (Some(1.5), Some(80.0)));
    }
}
