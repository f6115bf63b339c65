//! Why the ring could not be set up, said so that an operator knows the fix.

use std::io;

use io_uring::{opcode, IoUring, Probe};

#[derive(Debug, thiserror::Error)]
pub enum UringError {
    #[error(
        "io_uring is disabled on this host (sysctl kernel.io_uring_disabled = {level}); \
         fix: `sysctl -w kernel.io_uring_disabled=0` (or 1 and run ringlb as a privileged user)"
    )]
    Disabled { level: String },
    #[error(
        "io_uring_setup was refused (EPERM): a seccomp profile (Docker's default blocks io_uring) \
         or a hardened kernel forbids it; fix: allow io_uring_setup/io_uring_enter/\
         io_uring_register in the seccomp profile (e.g. docker --security-opt seccomp=unconfined)"
    )]
    Forbidden,
    #[error(
        "this kernel has no io_uring (ENOSYS); ringlb needs Linux 6.0 or newer with \
         CONFIG_IO_URING=y"
    )]
    NoKernelSupport,
    #[error(
        "kernel {release} is too old: ringlb needs {needed} (Linux 6.0 or newer); \
         fix: upgrade the kernel"
    )]
    KernelTooOld {
        release: String,
        needed: &'static str,
    },
    #[error(
        "io_uring setup ran out of locked memory (RLIMIT_MEMLOCK): {error}; fix: raise the \
         limit (`ulimit -l`, LimitMEMLOCK= in systemd) or lower runtime.ring_entries"
    )]
    // The io::Errors below are fields, not `source()`s: their text is already in the message,
    // and a printer that walks the source chain would show the reason twice.
    MemLock { error: io::Error },
    #[error("io_uring setup failed: {what}: {error}")]
    Setup {
        what: &'static str,
        error: io::Error,
    },
    #[error(
        "cannot register the provided buffer ring ({count} x {size} bytes): {error}; fix: raise \
         RLIMIT_MEMLOCK or lower runtime.buffer_count / runtime.buffer_size"
    )]
    RegisterBufRing {
        count: u32,
        size: u32,
        error: io::Error,
    },
    #[error("buffer ring: {reason}")]
    BufRing { reason: String },
    #[error("io_uring_enter failed: {0}")]
    Submit(io::Error),
    #[error(
        "the kernel dropped io_uring completions (EBADR, out of memory for its overflow list): \
         this worker can no longer account for its connections and stops; fix: free memory or \
         lower runtime.ring_entries"
    )]
    CompletionsLost,
    #[error("the io_uring submission queue is unusable: {0}")]
    Stuck(io::Error),
}

impl UringError {
    pub(super) fn from_setup(e: io::Error) -> UringError {
        match e.raw_os_error() {
            Some(libc::EPERM) => match disabled_level() {
                Some(level) if level != "0" => UringError::Disabled { level },
                _ => UringError::Forbidden,
            },
            Some(libc::ENOSYS) => UringError::NoKernelSupport,
            Some(libc::ENOMEM) => UringError::MemLock { error: e },
            _ => UringError::Setup {
                what: "io_uring_setup",
                error: e,
            },
        }
    }

    pub(super) fn register_buf_ring(e: io::Error, count: u32, size: u32) -> UringError {
        if e.raw_os_error() == Some(libc::EINVAL) {
            return UringError::KernelTooOld {
                release: kernel_release(),
                needed: "provided buffer rings (5.19+)",
            };
        }
        UringError::RegisterBufRing {
            count,
            size,
            error: e,
        }
    }
}

fn disabled_level() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_string())
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// (major, minor) of the running kernel, if it can be read.
fn kernel_version() -> Option<(u32, u32)> {
    let release = kernel_release();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks that every op the relay uses exists. Multishot recv shares its opcode with plain
/// recv, so it is checked by kernel version (6.0).
pub(super) fn probe_ops(uring: &IoUring) -> Result<(), UringError> {
    let mut probe = Probe::new();
    uring
        .submitter()
        .register_probe(&mut probe)
        .map_err(|error| UringError::Setup {
            what: "register_probe",
            error,
        })?;
    let needed = [
        (opcode::Accept::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::Connect::CODE, "connect"),
        (opcode::Shutdown::CODE, "shutdown (5.11+)"),
        (opcode::AsyncCancel::CODE, "async cancel"),
        (opcode::Read::CODE, "read"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(UringError::KernelTooOld {
                release: kernel_release(),
                needed: name,
            });
        }
    }
    if let Some(v) = kernel_version() {
        if v < (6, 0) {
            return Err(UringError::KernelTooOld {
                release: kernel_release(),
                needed: "multishot recv (6.0+)",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_name_the_reason_and_the_fix() {
        let enosys = UringError::from_setup(io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(matches!(enosys, UringError::NoKernelSupport));
        let enomem = UringError::from_setup(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(enomem.to_string().contains("ulimit -l"), "{enomem}");
        // The reason is in the message only: a chain printer must not repeat it.
        assert!(std::error::Error::source(&enomem).is_none());
        let eperm = UringError::from_setup(io::Error::from_raw_os_error(libc::EPERM)).to_string();
        // Which of the two depends on this host's sysctl; both must say what to do.
        assert!(
            eperm.contains("sysctl -w kernel.io_uring_disabled") || eperm.contains("seccomp"),
            "{eperm}"
        );
        let old = UringError::register_buf_ring(io::Error::from_raw_os_error(libc::EINVAL), 8, 8);
        assert!(old.to_string().contains("5.19"), "{old}");
    }
}
