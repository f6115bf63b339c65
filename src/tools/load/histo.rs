//! Latency histograms in microseconds (hdrhistogram) and the percentile summary the report
//! prints and writes. Must never panic on an out-of-range value: longer values saturate.

use std::time::Duration;

use hdrhistogram::{CreationError, Histogram};
use serde::{Deserialize, Serialize};

/// The highest value tracked exactly: one hour in microseconds, longer than any sane stream or
/// `--timeout`; anything longer is clamped rather than dropped.
pub const DEFAULT_MAX_MICROS: u64 = 3_600_000_000;

/// Three significant digits (0.1% error): hdrhistogram's usual precision, about 190 KiB per
/// histogram, and there are only five per run.
pub const DEFAULT_SIGNIFICANT_DIGITS: u8 = 3;

/// One metric's distribution, in microseconds.
pub struct Histo(Histogram<u64>);

impl Histo {
    pub fn new() -> Result<Self, CreationError> {
        Histogram::new_with_max(DEFAULT_MAX_MICROS, DEFAULT_SIGNIFICANT_DIGITS).map(Histo)
    }

    pub fn record(&mut self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros);
    }

    pub fn summary(&self) -> MetricSummary {
        let h = &self.0;
        if h.is_empty() {
            return MetricSummary::default();
        }
        MetricSummary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Percentiles of one metric in microseconds, as written to the JSON report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut h = Histo::new().unwrap();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((49_900..=50_100).contains(&s.p50), "{s:?}");
        assert!((98_900..=99_100).contains(&s.p99), "{s:?}");
        assert!((99_900..=100_100).contains(&s.max), "{s:?}");
        assert!((50_000.0..51_000.0).contains(&s.mean), "{s:?}");
    }

    #[test]
    fn huge_values_saturate_and_empty_is_zero() {
        let mut h = Histo::new().unwrap();
        assert_eq!(h.summary(), MetricSummary::default());
        h.record(Duration::from_secs(10 * 3600));
        assert!(h.summary().max >= DEFAULT_MAX_MICROS);
    }
}
