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
