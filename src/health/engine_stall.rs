//! Stall detection for one backend: an engine that reports requests running while its
//! generation counter has not moved for `stall_after` is stalled (a hung GPU, a deadlocked
//! scheduler: it accepts connections and answers `/health`, and streams nothing).
//!
//! A pure state machine fed one scrape at a time with its time; the scraper publishes what it
//! says to the table and logs it. It must never call an engine stalled without a generation
//! counter, with no request running, or on a reading that is stale.

/// A change the scraper publishes and logs once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Change {
    /// Requests running and the counter still for `unchanged_ms`.
    Stalled { running: u32, unchanged_ms: u64 },
    /// Not stalled any more, and why.
    Recovered(&'static str),
}

/// What one backend's engine was doing at its last scrapes.
#[derive(Debug, Default)]
pub(super) struct StallWatch {
    /// The generation counter at its last move, and when (`clock::now_ms()`).
    last: Option<(f64, u64)>,
    stalled: bool,
}

impl StallWatch {
    #[cfg(test)]
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// One scrape at `now_ms`: `running` requests and the counter (None: the engine has none);
    /// `stall_after_ms` None = detection off.
    pub fn observe(
        &mut self,
        now_ms: u64,
        running: u32,
        generation: Option<f64>,
        stall_after_ms: Option<u64>,
    ) -> Option<Change> {
        let (Some(value), Some(after)) = (generation, stall_after_ms) else {
            self.last = None;
            return self.recover("no generation counter");
        };
        let moved = self.last.is_none_or(|(v, _)| v != value);
        if moved || running == 0 {
            // Idle counts as progress: a stall is only measured from a scrape with work.
            self.last = Some((value, now_ms));
            return self.recover(if moved {
                "generation counter moving"
            } else {
                "no request running"
            });
        }
        let since = self.last.map_or(now_ms, |(_, at)| at);
        let unchanged_ms = now_ms.saturating_sub(since);
        if !self.stalled && unchanged_ms >= after {
            self.stalled = true;
            return Some(Change::Stalled {
                running,
                unchanged_ms,
            });
        }
        None
    }

    /// The reading went stale (scrapes failing): whatever the engine does, this cannot tell,
    /// and the active health check handles a dead server.
    pub fn lost(&mut self) -> Option<Change> {
        self.last = None;
        self.recover("engine metrics stale")
    }

    fn recover(&mut self, why: &'static str) -> Option<Change> {
        std::mem::replace(&mut self.stalled, false).then_some(Change::Recovered(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Option<u64> = Some(1_000);

    #[test]
    fn a_still_counter_with_requests_running_stalls_once_after_stall_after() {
        let mut w = StallWatch::default();
        assert_eq!(w.observe(0, 3, Some(10.0), AFTER), None);
        assert_eq!(w.observe(500, 3, Some(10.0), AFTER), None);
        assert_eq!(
            w.observe(1_000, 3, Some(10.0), AFTER),
            Some(Change::Stalled {
                running: 3,
                unchanged_ms: 1_000
            })
        );
        assert!(w.stalled());
        assert_eq!(w.observe(1_500, 3, Some(10.0), AFTER), None, "said once");
        assert_eq!(
            w.observe(2_000, 3, Some(11.0), AFTER),
            Some(Change::Recovered("generation counter moving"))
        );
        assert!(!w.stalled());
        assert_eq!(
            w.observe(2_900, 3, Some(11.0), AFTER),
            None,
            "measured anew"
        );
    }

    #[test]
    fn a_moving_counter_or_an_idle_engine_never_stalls() {
        let mut w = StallWatch::default();
        for (i, t) in (0..10u64).map(|i| (i, i * 600)) {
            assert_eq!(w.observe(t, 5, Some(i as f64), AFTER), None);
        }
        let mut idle = StallWatch::default();
        for t in (0..10u64).map(|i| i * 600) {
            assert_eq!(idle.observe(t, 0, Some(7.0), AFTER), None);
        }
        // Work arrives: measured from the last idle scrape.
        assert_eq!(idle.observe(6_000, 2, Some(7.0), AFTER), None);
        assert!(matches!(
            idle.observe(6_500, 2, Some(7.0), AFTER),
            Some(Change::Stalled { .. })
        ));
        assert_eq!(
            idle.observe(7_000, 0, Some(7.0), AFTER),
            Some(Change::Recovered("no request running"))
        );
    }

    #[test]
    fn without_a_counter_or_with_detection_off_nothing_stalls() {
        let mut w = StallWatch::default();
        for t in (0..10u64).map(|i| i * 600) {
            assert_eq!(w.observe(t, 5, None, AFTER), None);
            assert_eq!(w.observe(t, 5, Some(1.0), None), None);
        }
        assert!(!w.stalled());
    }

    #[test]
    fn a_stale_reading_clears_the_stall() {
        let mut w = StallWatch::default();
        w.observe(0, 1, Some(1.0), AFTER);
        assert!(w.observe(1_000, 1, Some(1.0), AFTER).is_some());
        assert_eq!(w.lost(), Some(Change::Recovered("engine metrics stale")));
        assert_eq!(w.lost(), None);
        assert_eq!(w.observe(5_000, 1, Some(1.0), AFTER), None, "starts over");
    }
}
