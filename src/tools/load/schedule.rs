//! When each request may start: back to back (closed loop) or on a fixed timetable of
//! `--rate` requests per second (open loop), until the duration or the request budget is used
//! up; plus the reconnect backoff. Must never move an open-loop request's intended start
//! because the target is slow: that is what keeps coordinated omission out of the latencies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::options::Limit;

/// First pause after a failed connect in closed loop: short enough not to matter when a target
/// restarts, long enough that a refusing target is not hammered by a spinning loop.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between reconnect attempts of one connection; doubling stops here so a target
/// that comes back is used again within a second.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Permission to run one request; `intended` is its timetabled start in open loop, `seq` its
/// number in the run (0-based, in the order tickets are handed out).
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    pub intended: Option<Instant>,
    pub seq: u64,
}

/// Hands out tickets to all connections of a run; shared, lock-free.
#[derive(Debug)]
pub struct Schedule {
    t0: Instant,
    limit: Limit,
    rate: Option<f64>,
    issued: AtomicU64,
}

impl Schedule {
    pub fn new(t0: Instant, limit: Limit, rate: Option<f64>) -> Self {
        Schedule {
            t0,
            limit,
            rate,
            issued: AtomicU64::new(0),
        }
    }

    /// The next request to run, or None when the run has issued all it should.
    ///
    /// Open loop numbers requests and gives request i the start `t0 + i / rate`: whichever
    /// connection frees up first takes the next number, so requests that could not start on
    /// time wait in this virtual queue and are measured from when they should have started.
    pub fn next(&self) -> Option<Ticket> {
        let i = self.issued.fetch_add(1, Ordering::Relaxed);
        if let Limit::Requests(n) = self.limit {
            if i >= n {
                return None;
            }
        }
        let Some(rate) = self.rate else {
            if let Limit::Duration(d) = self.limit {
                if self.t0.elapsed() >= d {
                    return None;
                }
            }
            return Some(Ticket {
                intended: None,
                seq: i,
            });
        };
        let offset = Duration::try_from_secs_f64(i as f64 / rate).ok()?;
        if let Limit::Duration(d) = self.limit {
            if offset >= d {
                return None;
            }
        }
        let intended = self.t0.checked_add(offset)?;
        Some(Ticket {
            intended: Some(intended),
            seq: i,
        })
    }
}

/// Exponential pause between failed connects of one connection (closed loop only).
#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    pub fn pause(&mut self) -> Duration {
        let pause = self.next.unwrap_or(DEFAULT_BACKOFF_MIN);
        self.next = Some((pause * 2).min(DEFAULT_BACKOFF_MAX));
        pause
    }

    pub fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_budget_is_exact() {
        let s = Schedule::new(Instant::now(), Limit::Requests(3), None);
        assert_eq!((0..10).filter_map(|_| s.next()).count(), 3);
    }

    #[test]
    fn open_loop_timetable() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Limit::Duration(Duration::from_secs(1)), Some(200.0));
        let tickets: Vec<_> = std::iter::from_fn(|| s.next()).collect();
        assert_eq!(tickets.len(), 200);
        assert!(tickets.iter().enumerate().all(|(i, t)| t.seq == i as u64));
        let at = |i: usize| tickets[i].intended.unwrap() - t0;
        assert_eq!(at(0), Duration::ZERO);
        assert_eq!(at(100), Duration::from_millis(500));
        assert!(at(199) < Duration::from_secs(1));
    }

    #[test]
    fn closed_loop_duration_ends() {
        let s = Schedule::new(
            Instant::now(),
            Limit::Duration(Duration::from_secs(60)),
            None,
        );
        assert!(s.next().is_some_and(|t| t.intended.is_none()));
        let past = Instant::now()
            .checked_sub(Duration::from_millis(5))
            .unwrap();
        let s = Schedule::new(past, Limit::Duration(Duration::from_millis(1)), None);
        assert!(s.next().is_none());
    }

    #[test]
    fn backoff_doubles_to_cap_and_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.pause(), DEFAULT_BACKOFF_MIN);
        assert_eq!(b.pause(), DEFAULT_BACKOFF_MIN * 2);
        for _ in 0..20 {
            b.pause();
        }
        assert_eq!(b.pause(), DEFAULT_BACKOFF_MAX);
        b.reset();
        assert_eq!(b.pause(), DEFAULT_BACKOFF_MIN);
    }
}
