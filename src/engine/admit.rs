//! How many client connections the whole server holds, against `runtime.max_connections` and
//! each listener's `max_connections`. Counts are shared by all workers (one atomic each), taken
//! at accept and given back when the connection's slot is freed.
//!
//! At a limit a worker stops accepting on the listeners concerned: clients wait in the kernel's
//! listen backlog, as with HAProxy's maxconn, instead of costing descriptors the process may not
//! have. Must never let a count go below zero or past its limit.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Listeners a reload may add beyond those the server started with (gates are allocated once).
pub const LISTENER_HEADROOM: usize = 32;

struct Gate {
    count: CachePadded<AtomicU32>,
    /// 0 = no limit of its own. A reload may change it.
    limit: AtomicU32,
}

impl Gate {
    fn new(limit: u32) -> Gate {
        Gate {
            count: CachePadded::new(AtomicU32::new(0)),
            limit: AtomicU32::new(limit),
        }
    }

    fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    fn try_take(&self) -> bool {
        let limit = match self.limit() {
            0 => u32::MAX,
            l => l,
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
        let limit = self.limit();
        limit != 0 && before >= limit
    }

    fn has_room(&self) -> bool {
        let limit = self.limit();
        limit == 0 || self.count.load(Ordering::Acquire) < limit
    }
}

pub struct Admission {
    total: Gate,
    listeners: Vec<Gate>,
    /// Listeners in use: gates past it are room for a reload to add listeners.
    used: AtomicUsize,
}

impl Admission {
    /// `total` for the server (0 = unlimited), one limit per listener (0 = none of its own).
    pub fn new(total: u32, listeners: &[u32]) -> Admission {
        let gates = (0..listeners.len() + LISTENER_HEADROOM)
            .map(|i| Gate::new(listeners.get(i).copied().unwrap_or(0)))
            .collect();
        Admission {
            total: Gate::new(total),
            listeners: gates,
            used: AtomicUsize::new(listeners.len()),
        }
    }

    /// Sets the limit of listener `index` (a reload); an index past those in use adds it. False
    /// if there is no room for it.
    pub fn set_listener(&self, index: usize, limit: u32) -> bool {
        let Some(g) = self.listeners.get(index) else {
            return false;
        };
        g.limit.store(limit, Ordering::Relaxed);
        self.used.fetch_max(index + 1, Ordering::AcqRel);
        true
    }

    /// Listeners this server can hold (those in use and the room for more).
    pub fn capacity(&self) -> usize {
        self.listeners.len()
    }

    fn gate(&self, listener: usize) -> Option<&Gate> {
        if listener >= self.used.load(Ordering::Acquire) {
            return None;
        }
        self.listeners.get(listener)
    }

    /// Counts a new client of `listener`; false (nothing counted) if a limit is reached.
    pub fn try_admit(&self, listener: usize) -> bool {
        let Some(l) = self.gate(listener) else {
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
        let was_full = self.gate(listener).is_some_and(Gate::give);
        self.total.give() || was_full
    }

    /// True if a new client of `listener` would be admitted now.
    pub fn has_room(&self, listener: usize) -> bool {
        self.total.has_room() && self.gate(listener).is_some_and(Gate::has_room)
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
