//! Spill blocks: where the bytes waiting for a slow or stalled peer live, so that they never
//! pin the worker's shared receive buffers.
//!
//! A block is [`BLOCK`] bytes of its own lazily mapped memory, taken when a direction of a
//! connection cannot send what it received and given back when those bytes are out. A few free
//! blocks are kept for reuse; [`SpillPool::trim`] unmaps the rest, so spill memory grows with
//! the number of stalled streams and shrinks back after them.
//!
//! Ownership rule (as for buffer ids): a block id belongs to the worker from `take` to `give`,
//! and the memory lives until then at least. The pool must never unmap a block that is taken.

use std::io;

use super::mapping::Mapping;

/// 64 KiB: a stalled token stream's backlog fits in one or a few blocks, and sends from a
/// block are large enough for bulk streams that the reader slows down.
pub const BLOCK: u32 = 64 * 1024;
/// Free blocks kept mapped between trims: reused by the next stall without a syscall.
const KEEP_FREE: usize = 16;

#[derive(Default)]
pub struct SpillPool {
    /// Indexed by block id; `None` once unmapped (the id is then vacant).
    blocks: Vec<Option<Mapping>>,
    /// Mapped, not taken: reused first (most recently freed last).
    free: Vec<u32>,
    vacant: Vec<u32>,
    taken: u32,
    leak_on_drop: bool,
}

impl SpillPool {
    /// A block for the caller's exclusive use, zero-filled or holding stale bytes of an earlier
    /// use (only what the caller writes is ever sent).
    pub fn take(&mut self) -> io::Result<u32> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let mapping = Mapping::new(BLOCK as usize)?;
                match self.vacant.pop() {
                    Some(id) => {
                        self.blocks[id as usize] = Some(mapping);
                        id
                    }
                    None => {
                        self.blocks.push(Some(mapping));
                        (self.blocks.len() - 1) as u32
                    }
                }
            }
        };
        self.taken += 1;
        Ok(id)
    }

    /// Gives block `id` back; no op may refer to it any more.
    pub fn give(&mut self, id: u32) {
        self.taken = self.taken.saturating_sub(1);
        if self.free.len() < KEEP_FREE {
            self.free.push(id);
        } else if let Some(slot) = self.blocks.get_mut(id as usize) {
            *slot = None;
            self.vacant.push(id);
        }
    }

    /// Blocks taken right now.
    pub fn in_use(&self) -> u32 {
        self.taken
    }

    /// Unmaps every free block but a few: the memory of a past stall goes back to the system.
    pub fn trim(&mut self) {
        let keep = if self.taken == 0 { 0 } else { KEEP_FREE / 4 };
        while self.free.len() > keep {
            let Some(id) = self.free.pop() else { break };
            self.blocks[id as usize] = None;
            self.vacant.push(id);
        }
    }

    /// Address of byte `offset` of block `id`, or None for an id that is not mapped.
    pub fn addr(&self, id: u32, offset: u32) -> Option<*mut u8> {
        let mapping = self.blocks.get(id as usize)?.as_ref()?;
        debug_assert!(offset <= BLOCK);
        // SAFETY: offset <= BLOCK, the mapping's length.
        Some(unsafe { mapping.as_ptr().add(offset.min(BLOCK) as usize) })
    }

    pub fn leak_on_drop(&mut self) {
        self.leak_on_drop = true;
    }
}

impl Drop for SpillPool {
    fn drop(&mut self) {
        if self.leak_on_drop || std::thread::panicking() {
            // A send may still read a block: leak every mapping rather than unmap it.
            for block in self.blocks.drain(..).flatten() {
                std::mem::forget(block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_and_trimmed() {
        let mut pool = SpillPool::default();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.in_use(), 2);
        pool.give(a);
        assert_eq!(pool.take().unwrap(), a, "a free block is reused first");
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.in_use(), 0);
        pool.trim();
        assert!(
            pool.addr(a, 0).is_none() && pool.addr(b, 0).is_none(),
            "unmapped"
        );
        let c = pool.take().unwrap();
        assert!(c == a || c == b, "vacant ids are reused");
        assert!(pool.addr(c, BLOCK).is_some());
    }
}
