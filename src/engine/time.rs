//! The engine's clock: the process clock in production, a hand-advanced one in tests, so that
//! timeouts of an hour are tested in milliseconds and never depend on a loaded machine's timing.
//!
//! Workers read it once per loop turn. A manual clock wakes every worker it is attached to when
//! advanced, so deadlines that just passed fire at once. Must never go backwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::uring::Waker;

#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

struct Manual {
    now_us: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Clock {
    /// The process-wide monotonic clock (`crate::clock`), shared with the backend table.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still until [`Clock::advance`]; starts at the process clock's now.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::new(Manual {
                now_us: AtomicU64::new(crate::clock::now_us()),
                wakers: Mutex::new(Vec::new()),
            })),
        }
    }

    /// Microseconds on this clock.
    #[inline]
    pub fn now_us(&self) -> u64 {
        match &self.manual {
            None => crate::clock::now_us(),
            Some(m) => m.now_us.load(Ordering::Acquire),
        }
    }

    /// Moves a manual clock forward by `d` and wakes the workers using it; no-op on the
    /// system clock.
    pub fn advance(&self, d: Duration) {
        if let Some(m) = &self.manual {
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            m.now_us.fetch_add(us, Ordering::AcqRel);
            for w in m.wakers.lock().iter() {
                w.wake();
            }
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Registers a worker to wake on [`Clock::advance`].
    pub(super) fn attach(&self, waker: Waker) {
        if let Some(m) = &self.manual {
            m.wakers.lock().push(waker);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_manual() {
            "Clock(manual)"
        } else {
            "Clock(system)"
        })
    }
}
