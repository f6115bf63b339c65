//! The few raw system calls the engine needs beyond the ring (resource limits), kept here so
//! that every `unsafe` block of the engine lives in this module.

use std::io;

/// RLIMIT_NOFILE as (soft, hard).
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct we pass, which lives across the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Sets RLIMIT_NOFILE's soft limit (the hard limit is left as it is).
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile()?;
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes of data the peer of TCP socket `fd` has acknowledged over the connection's life
/// (`tcpi_bytes_acked`): it grows while the peer takes bytes from our send buffer, even when
/// we send nothing new. None if the kernel does not report it.
pub fn tcp_bytes_acked(fd: std::os::fd::RawFd) -> Option<u64> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is a zeroed tcp_info
    // of exactly that size living across the call; `len` is updated to what was written.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, so every field is valid whatever the kernel wrote.
    let info = unsafe { info.assume_init() };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    (len as usize >= needed).then_some(info.tcpi_bytes_acked)
}
