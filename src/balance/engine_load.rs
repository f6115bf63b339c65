//! What a backend's inference engine last said about its own load (vLLM, SGLang, TGI publish
//! running and waiting requests and KV-cache usage on `/metrics`), published by the control
//! plane's scraper and read by `least_load` picks; and whether the engine is stalled (running
//! requests, no tokens coming out), which takes the backend out of every pool's picks.
//!
//! A reading is one packed `u64` so a pick sees running, waiting and usage of the same scrape
//! with a single load; it is valid until its `fresh_until_ms`, after which picks fall back to
//! our own counts. Written a few times a second by one scraper task, so it may share the
//! backend's cache line with the count. Must never be written on the pick path, never block.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Running and waiting are kept in 20 bits each: a million requests on one engine is far past
/// any server, and the clamp keeps a garbage scrape from wrapping.
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u32 = (1 << COUNT_BITS) - 1;
/// KV usage in 1/10,000, 14 bits (0..=10,000 fits); the top bit says whether it was reported.
const KV_SCALE: f64 = 10_000.0;
const KV_SHIFT: u32 = 2 * COUNT_BITS;
const KV_KNOWN: u64 = 1 << 63;

/// One scrape of an engine's load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineReading {
    /// Requests the engine is generating for now (from every client, not only ours).
    pub running: u32,
    /// Requests queued in the engine, waiting for a slot or KV space.
    pub waiting: u32,
    /// KV-cache usage, 0.0..=1.0; None when the engine does not report it.
    pub kv_usage: Option<f64>,
}

impl EngineReading {
    fn pack(self) -> u64 {
        let running = u64::from(self.running.min(COUNT_MAX));
        let waiting = u64::from(self.waiting.min(COUNT_MAX));
        let kv = match self.kv_usage {
            // NaN maps to 0 through `as`; the clamp bounds the rest.
            Some(u) => KV_KNOWN | (((u.clamp(0.0, 1.0) * KV_SCALE).round() as u64) << KV_SHIFT),
            None => 0,
        };
        running | (waiting << COUNT_BITS) | kv
    }

    fn unpack(bits: u64) -> EngineReading {
        let mask = u64::from(COUNT_MAX);
        let kv = ((bits & !KV_KNOWN) >> KV_SHIFT) as f64 / KV_SCALE;
        EngineReading {
            running: (bits & mask) as u32,
            waiting: ((bits >> COUNT_BITS) & mask) as u32,
            kv_usage: (bits & KV_KNOWN != 0).then_some(kv),
        }
    }
}

/// The last reading of one backend's engine and until when it holds.
#[derive(Debug, Default)]
pub(crate) struct EngineLoad {
    packed: AtomicU64,
    /// `clock::now_ms()` after which the reading is stale; 0 = never scraped or expired.
    fresh_until_ms: AtomicU64,
    /// The engine has requests running but its generation counter stopped moving.
    stalled: AtomicBool,
}

impl EngineLoad {
    /// Publishes a scrape, valid until `fresh_until_ms`.
    pub(crate) fn publish(&self, reading: EngineReading, fresh_until_ms: u64) {
        self.packed.store(reading.pack(), Ordering::Relaxed);
        // Release pairs with the Acquire in `read_at`: a reader that sees the new deadline
        // sees the new reading (a reader racing the store may see the old one, still fresh).
        self.fresh_until_ms
            .store(fresh_until_ms.max(1), Ordering::Release);
    }

    /// Forgets the reading (scraping was turned off for the pool, or failed past staleness).
    pub(crate) fn expire(&self) {
        self.fresh_until_ms.store(0, Ordering::Release);
    }

    /// The reading, if one holds at `now_ms`.
    #[inline]
    pub(crate) fn read_at(&self, now_ms: u64) -> Option<EngineReading> {
        let until = self.fresh_until_ms.load(Ordering::Acquire);
        (until != 0 && now_ms < until)
            .then(|| EngineReading::unpack(self.packed.load(Ordering::Relaxed)))
    }

    /// Marks the engine stalled or not; returns true if that changed.
    pub(crate) fn set_stalled(&self, stalled: bool) -> bool {
        self.stalled.swap(stalled, Ordering::Relaxed) != stalled
    }

    #[inline]
    pub(crate) fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(running: u32, waiting: u32, kv_usage: Option<f64>) -> EngineReading {
        EngineReading {
            running,
            waiting,
            kv_usage,
        }
    }

    #[test]
    fn a_reading_round_trips_through_the_packing() {
        for r in [
            reading(0, 0, None),
            reading(16, 3, Some(0.4567)),
            reading(COUNT_MAX, COUNT_MAX, Some(1.0)),
            reading(1, 0, Some(0.0)),
        ] {
            assert_eq!(EngineReading::unpack(r.pack()), r);
        }
    }

    #[test]
    fn out_of_range_values_are_clamped_not_wrapped() {
        let r = EngineReading::unpack(reading(u32::MAX, 5_000_000, Some(7.5)).pack());
        assert_eq!(r, reading(COUNT_MAX, COUNT_MAX, Some(1.0)));
        let neg = EngineReading::unpack(reading(0, 0, Some(-3.0)).pack());
        assert_eq!(neg.kv_usage, Some(0.0));
        let nan = EngineReading::unpack(reading(0, 0, Some(f64::NAN)).pack());
        assert_eq!(nan.kv_usage, Some(0.0));
    }

    #[test]
    fn a_reading_holds_until_its_deadline_then_is_stale() {
        let load = EngineLoad::default();
        assert_eq!(load.read_at(0), None, "never scraped");
        load.publish(reading(4, 1, Some(0.5)), 1_000);
        assert_eq!(load.read_at(999), Some(reading(4, 1, Some(0.5))));
        assert_eq!(load.read_at(1_000), None);
        load.publish(reading(5, 0, None), 2_000);
        load.expire();
        assert_eq!(load.read_at(1_500), None);
    }

    #[test]
    fn stalled_reports_changes_only() {
        let load = EngineLoad::default();
        assert!(!load.set_stalled(false));
        assert!(load.set_stalled(true));
        assert!(!load.set_stalled(true));
        assert!(load.stalled());
        assert!(load.set_stalled(false));
    }
}
