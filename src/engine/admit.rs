//! How many client connections the whole server holds, against `runtime.max_connections` and
//! each listener's `max_connections`. Counts are shared by all workers (one atomic each), taken
//! at accept and given back when the connection's slot is freed.
//!
//! At a limit a worker stops accepting on the listeners concerned: clients wait in the kernel's
//! listen backlog, as with HAProxy's maxconn, instead of costing descriptors the process may not
//! have. Must never let a count go below zero or past its limit.

use std::sync::atomic::{AtomicU32, Ordering};

use crossbeam_utils::CachePadded;

struct Gate {
    count: CachePadded<AtomicU32>,
    /// 0 = no limit of its own.
    limit: u32,
}

impl Gate {
    fn new(limit: u32) -> Gate {
        Gate {
            count: CachePadded::new(AtomicU32::new(0)),
            limit,
        }
    }

    fn try_take(&self) -> bool {
        let limit = if self.limit == 0 {
            u32::MAX
        } else {
            self.limit
        };
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives one back; true if the gate was full before.
    fn give(&self) -> bool {
        let before = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .unwrap_or(0);
        self.limit != 0 && before >= self.limit
    }

    fn has_room(&self) -> bool {
        self.limit == 0 || self.count.load(Ordering::Acquire) < self.limit
    }
}

pub struct Admission {
    total: Gate,
    listeners: Vec<Gate>,
}

impl Admission {
    /// `total` for the server (0 = unlimited), one limit per listener (0 = none of its own).
    pub fn new(total: u32, listeners: &[u32]) -> Admission {
        Admission {
            total: Gate::new(total),
            listeners: listeners.iter().map(|&l| Gate::new(l)).collect(),
        }
    }

    /// Counts a new client of `listener`; false (nothing counted) if a limit is reached.
    pub fn try_admit(&self, listener: usize) -> bool {
        let Some(l) = self.listeners.get(listener) else {
            return false;
        };
        if !self.total.try_take() {
            return false;
        }
        if !l.try_take() {
            self.total.give();
            return false;
        }
        true
    }

    /// A client of `listener` is gone; true if a limit was reached before (workers that
    /// stopped accepting may resume).
    pub fn release(&self, listener: usize) -> bool {
        let was_full = self.listeners.get(listener).is_some_and(Gate::give);
        self.total.give() || was_full
    }

    /// True if a new client of `listener` would be admitted now.
    pub fn has_room(&self, listener: usize) -> bool {
        self.total.has_room() && self.listeners.get(listener).is_some_and(Gate::has_room)
    }

    /// Clients admitted right now (all listeners).
    pub fn admitted(&self) -> u32 {
        self.total.count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_release_says_when_room_opens() {
        let a = Admission::new(3, &[2, 0]);
        assert!(a.try_admit(0) && a.try_admit(0));
        assert!(!a.try_admit(0), "listener 0 is at its own limit");
        assert!(!a.has_room(0) && a.has_room(1));
        assert!(a.try_admit(1));
        assert!(!a.try_admit(1), "the server limit holds across listeners");
        assert_eq!(a.admitted(), 3);
        assert!(a.release(1), "the server was full");
        assert!(a.has_room(1) && !a.has_room(0));
        assert!(a.release(0), "listener 0 was full");
        assert!(!a.release(0));
        assert!(!a.release(0), "never below zero");
        assert_eq!(a.admitted(), 0);
        assert!(!a.try_admit(7), "unknown listener");
    }

    #[test]
    fn zero_means_unlimited() {
        let a = Admission::new(0, &[0]);
        for _ in 0..1000 {
            assert!(a.try_admit(0));
        }
        assert!(a.has_room(0));
    }
}
