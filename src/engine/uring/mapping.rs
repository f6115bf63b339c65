//! Anonymous memory mappings for buffers the kernel reads and writes: page aligned, zero filled
//! on first touch (so memory that is never used is never resident), and given back to the
//! system with `madvise` or `munmap` when no longer needed.
//!
//! A `Mapping` must never be unmapped or discarded while an operation may still touch it; the
//! owners (`BufRing`, `SpillPool`) keep that rule.

use std::io;
use std::ptr::NonNull;

pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes (rounded up to whole pages by the kernel) of private anonymous memory.
    pub fn new(len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh private anonymous mapping: no file, no fixed address; the result is
        // checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { ptr, len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Drops the resident pages of `[offset, offset + len)`: the range reads as zeros afterwards
    /// and costs no memory until written again. Whole pages only (the caller passes
    /// page-aligned ranges); a failure only means the memory stays resident.
    pub fn discard(&self, offset: usize, len: usize) {
        debug_assert!(offset + len <= self.len);
        // SAFETY: the range lies inside this mapping; MADV_DONTNEED on private anonymous
        // memory only replaces its pages with zero-fill-on-demand ones. The caller guarantees
        // no operation is using the range.
        let r = unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(offset).cast(),
                len,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "madvise(DONTNEED)");
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; owners drop a mapping only once no
        // operation can touch it (or leak it instead).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
