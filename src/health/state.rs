//! Rise/fall hysteresis of one backend's check results: a backend changes state only after
//! `fall` failures (or `rise` passes) in a row, so one lost answer does not move its streams
//! and one lucky answer does not bring a flapping server back. Before its first result a
//! backend is unknown, and that first result decides at once.
//!
//! Pure and single-threaded (one checker task owns it); it must never publish anything
//! itself: the caller applies the transitions it returns.

use crate::balance::CheckStatus;

/// Where the hysteresis stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Unknown,
    Up,
    Down,
}

#[derive(Debug)]
pub(crate) struct Hysteresis {
    rise: u32,
    fall: u32,
    verdict: Verdict,
    /// Results in a row that contradict the verdict.
    streak: u32,
}

impl Hysteresis {
    /// Starts from what the table shows (a reload or a restarted checker task resumes there).
    /// `rise` and `fall` below 1 count as 1.
    pub(crate) fn new(rise: u32, fall: u32, published: CheckStatus) -> Hysteresis {
        let verdict = match published {
            CheckStatus::Up | CheckStatus::NotChecked => Verdict::Up,
            CheckStatus::Down(_) => Verdict::Down,
            CheckStatus::Unknown => Verdict::Unknown,
        };
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict,
            streak: 0,
        }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Feeds one result; returns the new verdict if this result changed it.
    pub(crate) fn record(&mut self, pass: bool) -> Option<Verdict> {
        let (next, needed) = match (self.verdict, pass) {
            (Verdict::Unknown, true) => (Verdict::Up, 1),
            (Verdict::Unknown, false) => (Verdict::Down, 1),
            (Verdict::Up, false) => (Verdict::Down, self.fall),
            (Verdict::Down, true) => (Verdict::Up, self.rise),
            (Verdict::Up, true) | (Verdict::Down, false) => {
                self.streak = 0;
                return None;
            }
        };
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.verdict = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::CheckFailure;

    fn feed(h: &mut Hysteresis, results: &str) -> Vec<Option<Verdict>> {
        results.chars().map(|c| h.record(c == '+')).collect()
    }

    #[test]
    fn unknown_is_decided_by_the_first_result() {
        let mut up = Hysteresis::new(3, 3, CheckStatus::Unknown);
        assert_eq!(up.record(true), Some(Verdict::Up));
        let mut down = Hysteresis::new(3, 3, CheckStatus::Unknown);
        assert_eq!(down.record(false), Some(Verdict::Down));
    }

    #[test]
    fn goes_down_after_fall_failures_in_a_row() {
        let mut h = Hysteresis::new(2, 3, CheckStatus::Up);
        assert_eq!(
            feed(&mut h, "--+--"),
            vec![None; 5],
            "a pass resets the count"
        );
        assert_eq!(h.record(false), Some(Verdict::Down));
        assert_eq!(h.verdict(), Verdict::Down);
        assert_eq!(h.record(false), None, "down stays down");
    }

    #[test]
    fn comes_up_after_rise_passes_in_a_row() {
        let mut h = Hysteresis::new(2, 3, CheckStatus::Down(CheckFailure::Timeout));
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(Verdict::Up));
        assert_eq!(h.record(true), None);
    }

    #[test]
    fn flapping_stays_down_until_rise_in_a_row() {
        let mut h = Hysteresis::new(3, 1, CheckStatus::Unknown);
        assert_eq!(h.record(false), Some(Verdict::Down));
        assert!(feed(&mut h, "+-+-++-++-").iter().all(Option::is_none));
        assert_eq!(h.verdict(), Verdict::Down);
        assert_eq!(feed(&mut h, "++"), vec![None, None]);
        assert_eq!(h.record(true), Some(Verdict::Up));
    }

    #[test]
    fn rise_and_fall_of_one_flip_on_every_change() {
        let mut h = Hysteresis::new(0, 0, CheckStatus::NotChecked);
        assert_eq!(
            feed(&mut h, "+-+"),
            vec![None, Some(Verdict::Down), Some(Verdict::Up)]
        );
    }
}
