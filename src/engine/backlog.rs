//! The bytes one direction of a connection holds for its peer: queued in receive buffers while
//! the peer keeps up, copied to spill blocks once it does not (see `conn` for the rule), and
//! given back the moment they are sent.
//!
//! Must never reorder bytes, lose a chunk's memory (every buffer or block goes back exactly
//! once), or write into bytes a pending send covers: appends go to the queue's tail, after
//! every byte already queued.

use std::io;

use super::conn::{Chunk, Mem};
use super::token::Side;
use super::uring::SPILL_BLOCK;
use super::worker::Worker;

impl Worker {
    /// Queues `len` bytes of receive buffer `bid` (just handed out by a recv) for `dst`: in the
    /// buffer itself, or copied to spill blocks with the buffer given back at once.
    pub(super) fn queue_received(
        &mut self,
        key: usize,
        dst: Side,
        bid: u16,
        len: u32,
    ) -> io::Result<()> {
        let h = self.conns[key].half(dst);
        if !h.spills(len) {
            h.outq.push_back(Chunk {
                mem: Mem::Ring(bid),
                offset: 0,
                len,
            });
            h.outq_bytes += len;
            return Ok(());
        }
        let copied = self.append_spill(key, dst, bid, 0, len);
        self.ring.bufs_mut().recycle(bid);
        copied
    }

    /// `dst` could not take a send whole: moves every byte it has queued in receive buffers to
    /// spill blocks, in order, and gives the buffers back. Only while no send to `dst` is in
    /// flight.
    pub(super) fn spill_queue(&mut self, key: usize, dst: Side) -> io::Result<()> {
        let h = self.conns[key].half(dst);
        h.blocked = true;
        if !h.outq.iter().any(|c| matches!(c.mem, Mem::Ring(_))) {
            return Ok(());
        }
        let mut old = std::mem::take(&mut h.outq);
        h.outq_bytes = 0;
        while let Some(c) = old.pop_front() {
            match c.mem {
                Mem::Spill(_) => {
                    let h = self.conns[key].half(dst);
                    h.outq.push_back(c);
                    h.outq_bytes += c.len;
                }
                Mem::Ring(bid) => {
                    if let Err(e) = self.append_spill(key, dst, bid, c.offset, c.len) {
                        // Keep what could not be copied queued as it was, so that freeing
                        // the connection gives every buffer back.
                        let h = self.conns[key].half(dst);
                        h.outq.push_back(c);
                        h.outq_bytes += c.len;
                        for rest in old {
                            h.outq.push_back(rest);
                            h.outq_bytes += rest.len;
                        }
                        return Err(e);
                    }
                    self.ring.bufs_mut().recycle(bid);
                }
            }
        }
        Ok(())
    }

    /// Copies `len` bytes of buffer `bid` from `from` to the end of `dst`'s queue, filling the
    /// tail spill block first, then new ones.
    fn append_spill(
        &mut self,
        key: usize,
        dst: Side,
        bid: u16,
        mut from: u32,
        mut len: u32,
    ) -> io::Result<()> {
        while len > 0 {
            let (id, at) = self.spill_tail(key, dst)?;
            let n = (SPILL_BLOCK - at).min(len);
            if !self.ring.copy_to_spill(bid, from, id, at, n) {
                return Err(io::Error::other("spill copy out of bounds"));
            }
            let h = &mut self.conns[key].halves[dst.idx()];
            if let Some(c) = h.outq.back_mut() {
                c.len += n;
            }
            h.outq_bytes += n;
            from += n;
            len -= n;
        }
        Ok(())
    }

    /// Copies `bytes` to the end of `dst`'s queue in spill blocks (the replay of a client's
    /// first bytes to a new backend).
    pub(super) fn append_bytes(
        &mut self,
        key: usize,
        dst: Side,
        mut bytes: &[u8],
    ) -> io::Result<()> {
        while !bytes.is_empty() {
            let (id, at) = self.spill_tail(key, dst)?;
            let n = ((SPILL_BLOCK - at) as usize).min(bytes.len());
            if !self.ring.copy_into_spill(&bytes[..n], id, at) {
                return Err(io::Error::other("spill copy out of bounds"));
            }
            let h = &mut self.conns[key].halves[dst.idx()];
            if let Some(c) = h.outq.back_mut() {
                c.len += n as u32;
            }
            h.outq_bytes += n as u32;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Queues `bytes` (at most one spill block) ahead of everything queued for `dst`: a PROXY
    /// header, before the client's first bytes. Only while no send to `dst` is in flight.
    pub(super) fn prepend_bytes(&mut self, key: usize, dst: Side, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|&n| n <= SPILL_BLOCK)
            .ok_or_else(|| io::Error::other("prefix larger than a spill block"))?;
        let id = self.ring.spill_mut().take()?;
        if !self.ring.copy_into_spill(bytes, id, 0) {
            self.ring.spill_mut().give(id);
            return Err(io::Error::other("spill copy out of bounds"));
        }
        let h = &mut self.conns[key].halves[dst.idx()];
        h.outq.push_front(Chunk {
            mem: Mem::Spill(id),
            offset: 0,
            len,
        });
        h.outq_bytes += len;
        Ok(())
    }

    /// The spill block at the end of `dst`'s queue with room left, and where its free room
    /// starts; a new (empty) block is queued when the tail has none.
    fn spill_tail(&mut self, key: usize, dst: Side) -> io::Result<(u32, u32)> {
        let h = &mut self.conns[key].halves[dst.idx()];
        let tail = h.outq.back().and_then(|c| match c.mem {
            Mem::Spill(id) if c.offset + c.len < SPILL_BLOCK => Some((id, c.offset + c.len)),
            _ => None,
        });
        if let Some(t) = tail {
            return Ok(t);
        }
        let id = self.ring.spill_mut().take()?;
        h.outq.push_back(Chunk {
            mem: Mem::Spill(id),
            offset: 0,
            len: 0,
        });
        Ok((id, 0))
    }

    /// `sent` bytes of `dst`'s head chunk went out: drops them, and the chunk with its memory
    /// once all of it is sent. Returns true if the queue is now empty.
    pub(super) fn consume_sent(&mut self, key: usize, dst: Side, sent: u32) -> bool {
        let h = self.conns[key].half(dst);
        h.outq_bytes = h.outq_bytes.saturating_sub(sent);
        let mut done = None;
        if let Some(head) = h.outq.front_mut() {
            if sent >= head.len {
                done = Some(head.mem);
                h.outq.pop_front();
            } else {
                head.offset += sent;
                head.len -= sent;
            }
        }
        let empty = h.outq.is_empty();
        if empty {
            h.blocked = false;
        }
        if let Some(mem) = done {
            self.release(mem);
        }
        empty
    }

    /// Gives a chunk's memory back: a receive buffer to the ring, a spill block to its pool.
    pub(super) fn release(&mut self, mem: Mem) {
        match mem {
            Mem::Ring(bid) => self.ring.bufs_mut().recycle(bid),
            Mem::Spill(id) => self.ring.spill_mut().give(id),
        }
    }
}
