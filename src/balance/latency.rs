//! Peak-EWMA latency estimates of one backend (connect time and time to first byte), in the
//! spirit of linkerd's / tower's `PeakEwma`: a sample above the current estimate replaces it at
//! once (a backend that turns slow is avoided within a few picks), a sample below pulls the
//! estimate toward it with weight `1 - exp(-elapsed / decay)`, and between samples the estimate
//! decays toward zero as `exp(-elapsed / decay)` (tower does that on every read; here the read
//! computes it without writing), so a backend that was slow and gets no traffic is tried again
//! after a few decay periods.
//!
//! Both estimates share one stamp: a sample of either kind first decays both to now, so a read
//! needs one `exp` per backend, not two (least_latency reads every backend on every pick).
//! `elapsed` in the pull weight is therefore the time since the backend's last sample of any
//! kind, as in tower it is the time since the last read or sample.
//!
//! Lock-free: each estimate is an `AtomicU64` holding f64 bits. Two samples racing on one
//! backend may lose one of them, and a reader may pair new values with an old stamp for an
//! instant; both only nudge an estimate that the next sample corrects, which is the price of
//! never locking on the connection path. Reads must never write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bits of an estimate before any sample: a NaN pattern no real sample can produce.
const NO_SAMPLE: u64 = u64::MAX;

/// Which estimate a sample feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    FirstByte,
}

/// The two estimates of one backend (ms at `stamp_ms`) and the decay of the pool using it.
#[derive(Debug)]
pub(crate) struct Latency {
    connect: AtomicU64,
    first_byte: AtomicU64,
    stamp_ms: AtomicU64,
    decay_ms: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            connect: AtomicU64::new(NO_SAMPLE),
            first_byte: AtomicU64::new(NO_SAMPLE),
            stamp_ms: AtomicU64::new(0),
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
    #[inline]
    pub(crate) fn components_at(&self, now_ms: u64) -> (Option<f64>, Option<f64>) {
        let (connect, first_byte) = (
            self.connect.load(Ordering::Relaxed),
            self.first_byte.load(Ordering::Relaxed),
        );
        if connect == NO_SAMPLE && first_byte == NO_SAMPLE {
            return (None, None);
        }
        let decay = self.decay_since_stamp(now_ms);
        (
            value(connect).map(|v| v * decay),
            value(first_byte).map(|v| v * decay),
        )
    }

    /// Sum of the estimates that have samples; None if neither has one.
    pub(crate) fn estimate_ms_at(&self, now_ms: u64) -> Option<f64> {
        match self.components_at(now_ms) {
            (None, None) => None,
            (c, f) => Some(c.unwrap_or(0.0) + f.unwrap_or(0.0)),
        }
    }

    pub(crate) fn observe_at(&self, kind: Kind, d: Duration, now_ms: u64) {
        let sample = d.as_secs_f64() * 1000.0;
        if !(sample.is_finite() && sample >= 0.0) {
            return;
        }
        let decay = self.decay_since_stamp(now_ms);
        let decayed = |bits: u64| value(bits).map(|v| v * decay);
        let mut connect = decayed(self.connect.load(Ordering::Relaxed));
        let mut first_byte = decayed(self.first_byte.load(Ordering::Relaxed));
        let target = match kind {
            Kind::Connect => &mut connect,
            Kind::FirstByte => &mut first_byte,
        };
        *target = Some(match *target {
            Some(current) if sample <= current => current + (sample - current) * (1.0 - decay),
            _ => sample,
        });
        let bits = |v: Option<f64>| v.map_or(NO_SAMPLE, f64::to_bits);
        self.connect.store(bits(connect), Ordering::Relaxed);
        self.first_byte.store(bits(first_byte), Ordering::Relaxed);
        // A sample stamped before the last one (only tests pass times out of order) must not
        // move the stamp back, which would decay the values twice over the same time.
        self.stamp_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    #[inline]
    fn decay_since_stamp(&self, now_ms: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.stamp_ms.load(Ordering::Relaxed));
        if elapsed == 0 {
            return 1.0;
        }
        (-(elapsed as f64) / self.decay_ms.load(Ordering::Relaxed) as f64).exp()
    }
}

#[inline]
fn value(bits: u64) -> Option<f64> {
    (bits != NO_SAMPLE).then(|| f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::{Connect, FirstByte};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn latency() -> Latency {
        let l = Latency::default();
        l.set_decay(Duration::from_secs(10));
        l
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
        let got = l.estimate_ms_at(11_000).unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(got > 20.0 && got < 90.0);
    }

    #[test]
    fn decays_toward_zero_without_samples() {
        let l = latency();
        l.observe_at(FirstByte, ms(100), 0);
        let later = l.estimate_ms_at(30_000).unwrap();
        assert!((later - 100.0 * (-3.0f64).exp()).abs() < 1e-9);
        assert_eq!(
            l.estimate_ms_at(0),
            Some(100.0),
            "time going back does not grow it"
        );
    }

    #[test]
    fn a_sample_of_one_kind_decays_the_other_exactly() {
        let l = latency();
        l.observe_at(FirstByte, ms(80), 0);
        l.observe_at(Connect, Duration::from_micros(1500), 5000);
        let (c, f) = l.components_at(20_000);
        assert_eq!(c, Some(1.5 * (-1.5f64).exp()));
        assert!((f.unwrap() - 80.0 * (-2.0f64).exp()).abs() < 1e-9);
        // A sample stamped in the past neither moves the stamp back nor pulls (no time passed).
        l.observe_at(Connect, ms(1), 1000);
        let want = 1.5 + 80.0 * (-0.5f64).exp();
        assert!((l.estimate_ms_at(5000).unwrap() - want).abs() < 1e-9);
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
}
