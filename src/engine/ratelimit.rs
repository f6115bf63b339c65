//! Repeated warnings, counted instead of printed: the first of a kind is logged, then at most
//! one line per interval says how many more there were. A worker at its descriptor limit
//! fails an accept per client; 400 identical lines help no one.

/// One kind of repeated event of one worker.
#[derive(Debug)]
pub(super) struct Repeats {
    every_ms: u64,
    /// When the last line was written (None: never).
    logged_at: Option<u64>,
    /// Events since then not logged.
    suppressed: u64,
}

impl Repeats {
    pub fn new(every_ms: u64) -> Repeats {
        Repeats {
            every_ms,
            logged_at: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: Some(n) when a line is due (n events were left out since the last
    /// line), None when this one is only counted.
    pub fn hit(&mut self, now: u64) -> Option<u64> {
        match self.logged_at {
            Some(at) if now < at + self.every_ms => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.logged_at = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_one_line_per_interval_with_the_count() {
        let mut r = Repeats::new(10_000);
        assert_eq!(r.hit(0), Some(0));
        for t in 1..400 {
            assert_eq!(r.hit(t), None);
        }
        assert_eq!(r.hit(10_000), Some(399), "one line for the 399 left out");
        assert_eq!(r.hit(10_001), None);
        assert_eq!(r.hit(30_000), Some(1));
    }
}
