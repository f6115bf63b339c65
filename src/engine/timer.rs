//! Per-worker deadlines (connect and idle timeouts) in one min-heap of (deadline, slot, gen).
//!
//! Entries are never removed when a connection ends or its deadline moves: they are checked
//! when they fire (lazy deletion), and the heap is compacted when stale entries outnumber the
//! live connections, so a high connection rate with hour-long idle timeouts cannot grow it
//! without bound. Must never take a lock or allocate per event in steady state.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    pub at_ms: u64,
    pub index: u32,
    pub gen: u32,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl Timers {
    pub fn push(&mut self, at_ms: u64, index: u32, gen: u32) {
        self.heap.push(Reverse(Deadline { at_ms, index, gen }));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(d)| d.at_ms)
    }

    /// Removes and returns the earliest deadline if it is due at `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Deadline> {
        match self.heap.peek() {
            Some(Reverse(d)) if d.at_ms <= now_ms => self.heap.pop().map(|Reverse(d)| d),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops entries whose connection is gone once they exceed twice the live count.
    pub fn compact_if_needed(&mut self, live: usize, mut is_live: impl FnMut(u32, u32) -> bool) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter(|Reverse(d)| is_live(d.index, d.gen))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut t = Timers::default();
        t.push(30, 1, 0);
        t.push(10, 2, 0);
        t.push(20, 3, 0);
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25).map(|d| d.index), Some(2));
        assert_eq!(t.pop_due(25).map(|d| d.index), Some(3));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.pop_due(30).map(|d| d.index), Some(1));
    }

    #[test]
    fn compaction_keeps_only_live_entries() {
        let mut t = Timers::default();
        for i in 0..5000 {
            t.push(1000 + i as u64, i, 0);
        }
        t.compact_if_needed(10, |index, _| index < 10);
        assert_eq!(t.len(), 10);
        t.compact_if_needed(10, |_, _| false);
        assert_eq!(t.len(), 10, "below the threshold nothing is scanned");
    }
}
