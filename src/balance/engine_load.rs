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

/// Running, waiting and our own busy streams at the scrape are kept in 16 bits each: 65,535
/// requests on one engine is far past any server's batch (vLLM's `max_num_seqs` is in the
/// hundreds), and the clamp keeps a garbage scrape from wrapping.
const COUNT_BITS: u32 = 16;
const COUNT_MAX: u32 = (1 << COUNT_BITS) - 1;
const WAITING_SHIFT: u32 = COUNT_BITS;
const OURS_SHIFT: u32 = 2 * COUNT_BITS;
/// KV usage in 1/10,000, 14 bits (0..=10,000 fits); the top bit says whether it was reported.
const KV_SCALE: f64 = 10_000.0;
const KV_SHIFT: u32 = 3 * COUNT_BITS;
const KV_MASK: u64 = (1 << 14) - 1;
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

/// A reading as picks see it: the engine's figures and how many of our own streams were busy
/// (counted, not idle) on the backend when it was taken, so that `running - ours_at_scrape`
/// is the load that does not come through this balancer. Taking it at scrape time, not at
/// pick time, matters: streams we add between two scrapes must raise the backend's load,
/// not cancel out against a `running` that does not include them yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Published {
    pub(crate) reading: EngineReading,
    pub(crate) ours_at_scrape: u32,
}

impl Published {
    fn pack(self) -> u64 {
        let count = |n: u32| u64::from(n.min(COUNT_MAX));
        let r = self.reading;
        let kv = match r.kv_usage {
            // NaN maps to 0 through `as`; the clamp bounds the rest.
            Some(u) => KV_KNOWN | (((u.clamp(0.0, 1.0) * KV_SCALE).round() as u64) << KV_SHIFT),
            None => 0,
        };
        count(r.running)
            | (count(r.waiting) << WAITING_SHIFT)
            | (count(self.ours_at_scrape) << OURS_SHIFT)
            | kv
    }

    fn unpack(bits: u64) -> Published {
        let count = |shift: u32| ((bits >> shift) & u64::from(COUNT_MAX)) as u32;
        let kv = ((bits >> KV_SHIFT) & KV_MASK) as f64 / KV_SCALE;
        Published {
            reading: EngineReading {
                running: count(0),
                waiting: count(WAITING_SHIFT),
                kv_usage: (bits & KV_KNOWN != 0).then_some(kv),
            },
            ours_at_scrape: count(OURS_SHIFT),
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
    /// Publishes a scrape taken while `ours_at_scrape` of our streams were busy on the backend,
    /// valid until `fresh_until_ms`. (`BackendState::publish_engine` fills in our count.)
    pub(crate) fn publish(&self, reading: EngineReading, ours_at_scrape: u32, fresh_until_ms: u64) {
        let published = Published {
            reading,
            ours_at_scrape,
        };
        self.packed.store(published.pack(), Ordering::Relaxed);
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
        self.published_at(now_ms).map(|p| p.reading)
    }

    /// The reading with our count at its scrape, if one holds at `now_ms`.
    #[inline]
    pub(crate) fn published_at(&self, now_ms: u64) -> Option<Published> {
        let until = self.fresh_until_ms.load(Ordering::Acquire);
        (until != 0 && now_ms < until)
            .then(|| Published::unpack(self.packed.load(Ordering::Relaxed)))
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

    fn round_trip(reading: EngineReading, ours_at_scrape: u32) -> Published {
        Published::unpack(
            Published {
                reading,
                ours_at_scrape,
            }
            .pack(),
        )
    }

    #[test]
    fn a_reading_round_trips_through_the_packing() {
        for (r, ours) in [
            (reading(0, 0, None), 0),
            (reading(16, 3, Some(0.4567)), 7),
            (reading(COUNT_MAX, COUNT_MAX, Some(1.0)), COUNT_MAX),
            (reading(1, 0, Some(0.0)), 1),
        ] {
            let back = round_trip(r, ours);
            assert_eq!((back.reading, back.ours_at_scrape), (r, ours));
        }
    }

    #[test]
    fn out_of_range_values_are_clamped_not_wrapped() {
        let r = round_trip(reading(u32::MAX, 5_000_000, Some(7.5)), u32::MAX);
        assert_eq!(r.reading, reading(COUNT_MAX, COUNT_MAX, Some(1.0)));
        assert_eq!(r.ours_at_scrape, COUNT_MAX);
        let neg = round_trip(reading(0, 0, Some(-3.0)), 0);
        assert_eq!(neg.reading.kv_usage, Some(0.0));
        let nan = round_trip(reading(0, 0, Some(f64::NAN)), 0);
        assert_eq!(nan.reading.kv_usage, Some(0.0));
    }

    #[test]
    fn a_reading_holds_until_its_deadline_then_is_stale() {
        let load = EngineLoad::default();
        assert_eq!(load.read_at(0), None, "never scraped");
        load.publish(reading(4, 1, Some(0.5)), 2, 1_000);
        assert_eq!(load.read_at(999), Some(reading(4, 1, Some(0.5))));
        assert_eq!(load.published_at(999).map(|p| p.ours_at_scrape), Some(2));
        assert_eq!(load.read_at(1_000), None);
        load.publish(reading(5, 0, None), 0, 2_000);
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
