//! The per-worker provided buffer ring: up to `count` buffers of `size` bytes that the kernel
//! picks from only when bytes arrive on a socket, so an idle connection holds no buffer.
//!
//! Memory follows use. The buffers live in one lazily mapped region (untouched buffers cost
//! nothing), and the ring is stocked with only as many of them as recent demand needs
//! (`target`, at least [`MIN_STOCK`]): the rest wait in a reserve the kernel does not know
//! about, most recently used on top, and [`BufRing::trim`] hands the cold ones' pages back to
//! the system. A buffer in the ring may be written by the kernel at any moment, so only reserve
//! buffers are ever discarded.
//!
//! Ownership rule: a buffer id handed out by a recv completion belongs to the worker until it is
//! given back with [`BufRing::recycle`]; the memory itself lives as long as the `BufRing`.
//! This module must never hand out a Rust reference into a buffer the kernel may be writing.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use super::mapping::Mapping;
use super::UringError;

/// Buffers kept in the ring even when idle: enough for a burst of small reads on a few dozen
/// sockets in one loop turn without running dry.
pub const MIN_STOCK: u32 = 32;
/// Reserve buffers kept resident when trimming: the next burst reuses them without faults.
const KEEP_HOT: usize = 8;

pub struct BufRing {
    // Dropped by hand: leaked instead when an op may still use them.
    entries: ManuallyDrop<Mapping>,
    data: ManuallyDrop<Mapping>,
    count: u32,
    size: u32,
    mask: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    published: u16,
    /// The epoll driver's copy of the kernel's head: the next ring entry it fills (unused with
    /// io_uring, where the kernel keeps its own).
    head: u16,
    bgid: u16,
    /// Buffers in the ring: the kernel may fill them.
    stocked: u32,
    /// Buffers owned by the worker (handed out by completions, not yet recycled).
    out: u32,
    /// How many buffers the ring should hold; grows when a recv finds the ring empty.
    target: u32,
    /// Most buffers out at once since the last trim: what the next target is sized on.
    peak_out: u32,
    /// Free buffers outside the ring, most recently used last.
    reserve: Vec<u16>,
    /// `reserve[..clean]` hold no resident memory (never used, or discarded).
    clean: usize,
    /// Set when the ring may still be used by in-flight ops at drop time: memory is then leaked
    /// rather than freed under the kernel's feet.
    leak_on_drop: bool,
}

impl BufRing {
    /// Maps room for `count` (a power of two, at most 32768) buffers of `size` bytes; none is
    /// resident yet, and the ring is stocked with [`MIN_STOCK`] of them once registered.
    pub fn new(count: u32, size: u32, bgid: u16) -> Result<BufRing, UringError> {
        if !count.is_power_of_two() || count > 32768 || size == 0 {
            return Err(UringError::BufRing {
                reason: format!("buffer_count {count} must be a power of two <= 32768"),
            });
        }
        let map = |len: usize| {
            Mapping::new(len).map_err(|e| UringError::BufRing {
                reason: format!("cannot map {count} x {size} bytes: {e}"),
            })
        };
        let entries = map(count as usize * std::mem::size_of::<BufRingEntry>())?;
        let data = map(count as usize * size as usize)?;
        // Highest id at the bottom: the first buffers used are 0, 1, 2 ... (nicer to debug).
        let reserve: Vec<u16> = (0..count).rev().map(|b| b as u16).collect();
        let mut ring = BufRing {
            entries: ManuallyDrop::new(entries),
            data: ManuallyDrop::new(data),
            count,
            size,
            mask: (count - 1) as u16,
            tail: 0,
            published: 0,
            head: 0,
            bgid,
            stocked: 0,
            out: 0,
            target: count.min(MIN_STOCK),
            peak_out: 0,
            clean: reserve.len(),
            reserve,
            leak_on_drop: false,
        };
        ring.restock();
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring with `uring` under this ring's buffer group id.
    pub fn register(&self, uring: &IoUring) -> Result<(), UringError> {
        // SAFETY: the entries array is `count` entries long, page aligned (a mapping), and
        // lives until `self` is dropped; the worker drops the IoUring (which unregisters
        // everything) before the BufRing (field order in `Ring`), and leaks the memory if ops
        // may be in flight.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.count as u16,
                self.bgid,
                0,
            )
        }
        .map_err(|e| UringError::register_buf_ring(e, self.count, self.size))
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    pub fn buffer_size(&self) -> u32 {
        self.size
    }

    /// Buffers the worker holds right now (received, not yet sent on or copied).
    pub fn in_use(&self) -> u32 {
        self.out
    }

    /// Buffers the kernel can fill right now.
    pub fn available(&self) -> u32 {
        self.stocked
    }

    /// Buffers that are resident or may become so without a trim: all but the clean reserve.
    pub fn warm(&self) -> u32 {
        self.count - self.clean as u32
    }

    /// Notes that the kernel handed buffer `bid` to the worker.
    pub fn taken(&mut self, _bid: u16) {
        self.stocked = self.stocked.saturating_sub(1);
        self.out += 1;
        self.peak_out = self.peak_out.max(self.out);
    }

    /// Address of byte `offset` of buffer `bid`.
    pub fn addr(&self, bid: u16, offset: u32) -> *mut u8 {
        debug_assert!((bid as u32) < self.count && offset <= self.size);
        let at = (bid as usize & self.mask as usize) * self.size as usize + offset as usize;
        // SAFETY: `at` is within the data mapping (bid < count, offset <= size).
        unsafe { self.data.as_ptr().add(at) }
    }

    /// epoll driver only (it plays the kernel's part): the buffer the next receive fills, if
    /// the ring has one. It stays in the ring until [`BufRing::consume`].
    pub fn next_free(&self) -> Option<u16> {
        if self.head == self.tail {
            return None;
        }
        let slot = (self.head & self.mask) as usize;
        // SAFETY: `slot < count`, inside the entries mapping; entries are written only by this
        // thread (`provide`), never between `head` and `tail`.
        Some(unsafe { (*self.entries.as_ptr().cast::<BufRingEntry>().add(slot)).bid() })
    }

    /// epoll driver only: the buffer [`BufRing::next_free`] named was filled and leaves the
    /// ring (its completion reports it, and the worker calls `taken`).
    pub fn consume(&mut self) {
        if self.head != self.tail {
            self.head = self.head.wrapping_add(1);
        }
    }

    /// Gives buffer `bid` back: into the ring if it is below its target, else to the reserve.
    pub fn recycle(&mut self, bid: u16) {
        self.out = self.out.saturating_sub(1);
        if self.stocked < self.target {
            self.provide(bid);
        } else {
            self.reserve.push(bid);
        }
    }

    /// The ring ran dry: double its target and stock it from the reserve. False if there was
    /// nothing to add (every buffer is out; wait for recycles).
    pub fn grow(&mut self) -> bool {
        self.target = self.bounded(self.target * 2);
        self.restock()
    }

    /// Periodic: sizes the target on the demand seen since the last call, and discards the
    /// pages of free buffers that demand did not need: reserve buffers but a few hot ones, and,
    /// when `quiescent`, ring buffers past the target (the ones the kernel would use last).
    ///
    /// `quiescent` is the caller's promise that the kernel cannot write any ring buffer while
    /// this runs and that every buffer it has filled was reported through `taken` (see
    /// `Ring::trim`): then our count of ring buffers is exact and their pages may go.
    pub fn trim(&mut self, quiescent: bool) {
        let wanted = (self.peak_out * 2).max(self.out).next_power_of_two();
        self.target = self.bounded(wanted);
        self.peak_out = self.out;
        let size = self.size as usize;
        let keep_from = self.reserve.len().saturating_sub(KEEP_HOT);
        for i in self.clean..keep_from {
            let bid = self.reserve[i] as usize;
            self.data.discard(bid * size, size);
        }
        self.clean = self.clean.max(keep_from);
        if !quiescent || self.stocked <= self.target {
            return;
        }
        let head = self.tail.wrapping_sub(self.stocked as u16);
        for i in self.target..self.stocked {
            let slot = (head.wrapping_add(i as u16) & self.mask) as usize;
            // SAFETY: `slot < count`, inside the entries mapping; the kernel only reads entries
            // (no incremental consumption), and we wrote this one.
            let bid = unsafe { (*self.entries.as_ptr().cast::<BufRingEntry>().add(slot)).bid() };
            self.data.discard(bid as usize * size, size);
        }
    }

    /// `target` kept within [MIN_STOCK, count] (all of a ring smaller than MIN_STOCK).
    fn bounded(&self, target: u32) -> u32 {
        target.max(MIN_STOCK.min(self.count)).min(self.count)
    }

    fn restock(&mut self) -> bool {
        let mut added = false;
        while self.stocked < self.target {
            let Some(bid) = self.reserve.pop() else { break };
            self.clean = self.clean.min(self.reserve.len());
            self.provide(bid);
            added = true;
        }
        added
    }

    fn provide(&mut self, bid: u16) {
        let slot = (self.tail & self.mask) as usize;
        let addr = self.addr(bid, 0) as u64;
        // SAFETY: `slot < count`, so the entry is inside the entries mapping. The kernel reads
        // entries only between its head and the published tail, and `slot` is past the
        // published tail (at most `count` buffers are ever in the ring), so nobody reads it
        // while we write.
        let entry = unsafe { &mut *self.entries.as_ptr().cast::<BufRingEntry>().add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.stocked += 1;
    }

    /// Makes provided buffers visible to the kernel (one release store per loop turn).
    pub fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail lives in entry 0's reserved field, inside the entries mapping, and is
        // only written by this thread; the kernel reads it with acquire semantics.
        let tail = unsafe {
            &*(BufRingEntry::tail(self.entries.as_ptr().cast::<BufRingEntry>()) as *const AtomicU16)
        };
        tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
    }

    pub fn leak_on_drop(&mut self) {
        self.leak_on_drop = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // An op may still reference the memory after a stop with ops pending or a panic:
        // leak it rather than unmap it under the kernel.
        if self.leak_on_drop || std::thread::panicking() {
            return;
        }
        // SAFETY: dropped exactly once, here; the IoUring that used them is gone (field order
        // in `Ring`) and no op is in flight (otherwise we returned above).
        unsafe {
            ManuallyDrop::drop(&mut self.entries);
            ManuallyDrop::drop(&mut self.data);
        }
    }
}

#[cfg(test)]
#[path = "bufring_tests.rs"]
mod tests;
