//! The per-worker provided buffer ring: `count` buffers of `size` bytes that the kernel picks
//! from only when bytes arrive on a socket, so an idle connection holds no buffer.
//!
//! Ownership rule: a buffer id handed out by a recv completion belongs to the worker until it is
//! given back with [`BufRing::recycle`]; the memory itself lives as long as the `BufRing`.
//! This module must never hand out a Rust reference into a buffer the kernel may be writing.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use super::UringError;

/// Page alignment keeps the entries array valid for the kernel to pin.
const PAGE: usize = 4096;

pub struct BufRing {
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    data: NonNull<u8>,
    data_layout: Layout,
    count: u16,
    size: u32,
    mask: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    published: u16,
    bgid: u16,
    /// Buffers currently owned by the worker (handed out, not yet recycled).
    out: u32,
    /// Set when the ring may still be used by in-flight ops at drop time: memory is then leaked
    /// rather than freed under the kernel's feet.
    leak_on_drop: bool,
}

impl BufRing {
    /// Allocates `count` (a power of two, at most 32768) buffers of `size` bytes, all of them
    /// initially available to the kernel once registered.
    pub fn new(count: u32, size: u32, bgid: u16) -> Result<BufRing, UringError> {
        if !count.is_power_of_two() || count > 32768 || size == 0 {
            return Err(UringError::BufRing {
                reason: format!("buffer_count {count} must be a power of two <= 32768"),
            });
        }
        let entries_layout = Layout::from_size_align(count as usize * 16, PAGE).map_err(|e| {
            UringError::BufRing {
                reason: e.to_string(),
            }
        })?;
        let data_layout =
            Layout::from_size_align(count as usize * size as usize, PAGE).map_err(|e| {
                UringError::BufRing {
                    reason: e.to_string(),
                }
            })?;
        // SAFETY: both layouts have a non-zero size (count >= 1, size >= 1); a null result is
        // handled. Zeroed memory is a valid initial state for io_uring_buf entries.
        let entries = NonNull::new(unsafe { alloc_zeroed(entries_layout) }.cast::<BufRingEntry>());
        // SAFETY: as above; large zeroed allocations come from fresh mappings, so untouched
        // buffers cost no resident memory.
        let data = NonNull::new(unsafe { alloc_zeroed(data_layout) });
        let (Some(entries), Some(data)) = (entries, data) else {
            return Err(UringError::BufRing {
                reason: format!("cannot allocate {count} x {size} bytes"),
            });
        };
        let mut ring = BufRing {
            entries,
            entries_layout,
            data,
            data_layout,
            count: count as u16,
            size,
            mask: (count - 1) as u16,
            tail: 0,
            published: 0,
            bgid,
            out: count,
            leak_on_drop: false,
        };
        for bid in 0..count {
            ring.recycle(bid as u16);
        }
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring with `ring` under this ring's buffer group id.
    pub fn register(&self, uring: &IoUring) -> Result<(), UringError> {
        // SAFETY: the entries array is `count` entries long, page aligned, and lives until
        // `self` is dropped; the worker drops the IoUring (which unregisters everything) before
        // the BufRing (field order in `Ring`), and leaks the memory if ops may be in flight.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.count,
                self.bgid,
                0,
            )
        }
        .map_err(|e| UringError::register_buf_ring(e, self.count as u32, self.size))
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    pub fn buffer_size(&self) -> u32 {
        self.size
    }

    /// Buffers the worker holds right now (received, not yet sent on).
    pub fn in_use(&self) -> u32 {
        self.out
    }

    /// Buffers the kernel can still fill.
    pub fn available(&self) -> u32 {
        self.count as u32 - self.out
    }

    /// Notes that the kernel handed buffer `bid` to the worker.
    pub fn taken(&mut self, _bid: u16) {
        self.out += 1;
    }

    /// Address of byte `offset` of buffer `bid`, for a send.
    pub fn addr(&self, bid: u16, offset: u32) -> *const u8 {
        debug_assert!(bid < self.count && offset <= self.size);
        let at = (bid as usize & self.mask as usize) * self.size as usize + offset as usize;
        // SAFETY: `at` is within the data allocation (bid < count, offset <= size).
        unsafe { self.data.as_ptr().add(at) }
    }

    /// Gives buffer `bid` back; the kernel sees it after the next [`BufRing::publish`].
    pub fn recycle(&mut self, bid: u16) {
        let slot = (self.tail & self.mask) as usize;
        let addr = self.addr(bid, 0) as u64;
        // SAFETY: `slot < count`, so the entry is inside the entries array. The kernel reads
        // entries only between the published tail and its head, and `slot` is past the published
        // tail, so nobody reads it while we write.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.out = self.out.saturating_sub(1);
    }

    /// Makes recycled buffers visible to the kernel (one release store per loop turn).
    pub fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail lives in entry 0's reserved field, inside the entries array, and is
        // only written by this thread; the kernel reads it with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
    }

    pub fn leak_on_drop(&mut self) {
        self.leak_on_drop = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leak_on_drop {
            return;
        }
        // SAFETY: allocated in `new` with exactly these layouts; the ring that referenced them
        // is gone and no op is in flight (otherwise leak_on_drop is set).
        unsafe {
            dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            dealloc(self.data.as_ptr(), self.data_layout);
        }
    }
}
