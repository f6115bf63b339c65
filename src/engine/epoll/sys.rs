//! The raw system calls of the epoll driver, each a thin wrapper that returns the result or the
//! errno (as io_uring reports it: a positive number here, negated in completions).
//!
//! Every `unsafe` block of the driver is here. Pointers into receive buffers and spill blocks
//! are computed here from the pools, within bounds, for memory the driver may use at that
//! moment (see each SAFETY note). This module must never keep a pointer past the call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;

use crate::engine::uring::{BufRing, SpillPool, SPILL_BLOCK};

/// The errno of the last failed call (EIO if the OS gave none).
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `rc` as a byte count, or the errno.
fn count(rc: isize) -> Result<usize, i32> {
    usize::try_from(rc).map_err(|_| errno())
}

pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain epoll_create1(2); the result is checked before it is owned.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// epoll_ctl(2): `op` on `fd` with `events`, the event's data being the descriptor itself.
pub fn ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32) -> Result<(), i32> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a live epoll_event for the duration of the call (the kernel copies it;
    // DEL ignores it).
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// epoll_wait(2) into `events` (its capacity is the most returned); EINTR counts as none.
pub fn wait(epfd: RawFd, events: &mut Vec<libc::epoll_event>, timeout_ms: i32) -> io::Result<()> {
    events.clear();
    let cap = events.capacity().min(i32::MAX as usize) as i32;
    // SAFETY: the kernel writes at most `cap` events into the vector's spare capacity, and
    // the length is set to what it reports having written.
    let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), cap, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(())
        } else {
            Err(e)
        };
    }
    // SAFETY: the first `n` (<= cap) entries were initialised by the kernel.
    unsafe { events.set_len(n as usize) };
    Ok(())
}

/// Sets O_NONBLOCK on `fd` if it lacks it (a listener: accept4 has no per-call flag for it).
pub fn ensure_nonblocking(fd: RawFd) -> Result<(), i32> {
    // SAFETY: fcntl(F_GETFL/F_SETFL) on a descriptor number; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(errno());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// accept4(2): a new non-blocking, close-on-exec client socket.
pub fn accept(fd: RawFd) -> Result<RawFd, i32> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no peer address is asked for (null pointers are allowed).
    let rc = unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
    if rc < 0 {
        return Err(errno());
    }
    Ok(rc)
}

/// recv(2) into the whole of receive buffer `bid`.
pub fn recv_into(fd: RawFd, bufs: &BufRing, bid: u16) -> Result<usize, i32> {
    let ptr = bufs.addr(bid, 0);
    // SAFETY: `bid` is the ring's next free buffer (`next_free`): in the ring, so handed to no
    // one, and the driver is the only writer of ring buffers (it plays the kernel's part);
    // the range is the buffer's `buffer_size` bytes inside the data mapping.
    let len = bufs.buffer_size() as usize;
    let rc = unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) };
    count(rc)
}

/// send(2) from receive buffer `bid` at `offset` (`flags` added to MSG_NOSIGNAL|MSG_DONTWAIT).
pub fn send_buffer(
    fd: RawFd,
    bufs: &BufRing,
    bid: u16,
    offset: u32,
    len: u32,
) -> Result<usize, i32> {
    if offset
        .checked_add(len)
        .is_none_or(|end| end > bufs.buffer_size())
    {
        return Err(libc::EFAULT);
    }
    let ptr = bufs.addr(bid, offset);
    // SAFETY: the range is inside buffer `bid` (checked above); the buffer is held by the
    // worker (a completion handed it out) and only read here.
    let rc = unsafe {
        libc::send(
            fd,
            ptr.cast(),
            len as usize,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    count(rc)
}

/// send(2) from spill block `id` at `offset`, non-blocking.
pub fn send_spill(
    fd: RawFd,
    spill: &SpillPool,
    id: u32,
    offset: u32,
    len: u32,
) -> Result<usize, i32> {
    let len = len.min(SPILL_BLOCK.saturating_sub(offset));
    let Some(ptr) = spill.addr(id, offset) else {
        return Err(libc::EFAULT);
    };
    // SAFETY: `addr` mapped the block and offset + len <= SPILL_BLOCK (clamped above); the
    // block stays taken by the worker until this send's completion, and is only read here.
    let rc = unsafe {
        libc::send(
            fd,
            ptr.cast(),
            len as usize,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    count(rc)
}

/// connect(2) on a non-blocking socket: Ok once connected, EINPROGRESS while under way.
pub fn connect(fd: RawFd, addr: SocketAddr) -> Result<(), i32> {
    let sa = SockAddr::from(addr);
    // SAFETY: `sa` is a valid socket address of `sa.len()` bytes, alive across the call.
    if unsafe { libc::connect(fd, sa.as_ptr().cast(), sa.len()) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// SO_ERROR: the pending error of a socket (0 = none), cleared by reading it.
pub fn so_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `err`, a live c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return errno();
    }
    err
}

pub fn shutdown_write(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain shutdown(2) on a descriptor number; no memory is passed.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// Reads (and so resets) an eventfd counter.
pub fn read_eventfd(fd: RawFd) -> Result<u64, i32> {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    let rc = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    count(rc).map(|_| v)
}
