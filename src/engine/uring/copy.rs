//! Copies between worker-owned memory: receive buffers handed out by a completion, spill
//! blocks taken from the pool, and plain Rust slices. Shared by both drivers (the memory is the
//! same; only who fills the receive buffers differs).
//!
//! Each copy checks its ranges first and copies nothing when they do not fit. It must never
//! touch a buffer the kernel (or the epoll driver acting for it) may still be filling.

use super::{BufRing, SpillPool, SPILL_BLOCK};

/// Copies `len` bytes from receive buffer `bid` at `from` into spill block `id` at `to`.
/// Both are owned by the worker (the buffer was handed out, the block taken) and no op
/// writes to either range. False if the ranges do not fit (nothing is copied).
pub fn copy_to_spill(
    bufs: &BufRing,
    spill: &SpillPool,
    (bid, from): (u16, u32),
    (id, to): (u32, u32),
    len: u32,
) -> bool {
    let fits = from
        .checked_add(len)
        .is_some_and(|end| end <= bufs.buffer_size())
        && to.checked_add(len).is_some_and(|end| end <= SPILL_BLOCK);
    let Some(dst) = spill.addr(id, to).filter(|_| fits) else {
        return false;
    };
    let src = bufs.addr(bid, from);
    // SAFETY: both ranges are in bounds (checked above) and belong to different mappings,
    // so they cannot overlap; the buffer was handed to the worker by a completion and is
    // not in the ring, so nothing writes it; a pending send of the block reads only bytes
    // before `to` (the block's queued range ends where appends start).
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len as usize) };
    true
}

/// Appends `len` bytes of receive buffer `bid` from `from` to `out`. The buffer was handed
/// to the worker by a completion. False if the range does not fit (nothing is copied).
pub fn copy_from_buffer(bufs: &BufRing, bid: u16, from: u32, len: u32, out: &mut Vec<u8>) -> bool {
    let fits = from
        .checked_add(len)
        .is_some_and(|end| end <= bufs.buffer_size());
    if !fits {
        return false;
    }
    let src = bufs.addr(bid, from);
    // SAFETY: the range is within buffer `bid` (checked above); the buffer is out of the
    // ring (a completion handed it to the worker), so nothing writes it while it is read
    // here, and `out` is a separate allocation.
    let bytes = unsafe { std::slice::from_raw_parts(src, len as usize) };
    out.extend_from_slice(bytes);
    true
}

/// Copies `src` into spill block `id` at `to`. False if it does not fit or the block is
/// not mapped (nothing is copied).
pub fn copy_into_spill(spill: &SpillPool, src: &[u8], id: u32, to: u32) -> bool {
    let fits = u32::try_from(src.len())
        .ok()
        .and_then(|n| to.checked_add(n))
        .is_some_and(|end| end <= SPILL_BLOCK);
    let Some(dst) = spill.addr(id, to).filter(|_| fits) else {
        return false;
    };
    // SAFETY: the range is within the block (checked above); `src` is a worker-owned slice
    // outside every mapping, so they cannot overlap; a pending send of the block reads
    // only bytes before `to` (appends start where the queued range ends).
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    true
}
