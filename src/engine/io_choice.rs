//! Which I/O driver the workers run on, and why: `runtime.io`, the `RINGLB_IO` override (for
//! tests and operations, read only when the config says `auto`), and for `auto` a probe of
//! io_uring as the workers would set it up. Decided once per start, before any worker runs,
//! so every worker uses the same driver and the reason is logged once.
//!
//! This module must never start a worker or keep the probe's ring.

use std::fmt;

use crate::config::{IoMode, Runtime};

use super::driver::Ring;
use super::epoll;
use super::uring::{self, UringError};
use super::EngineError;

/// The environment variable that overrides `runtime.io = "auto"`: `epoll`, `io_uring` or
/// `auto`. An explicit `io_uring` or `epoll` in the config is never overridden.
pub const IO_ENV: &str = "RINGLB_IO";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoDriver {
    IoUring,
    Epoll,
}

impl IoDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            IoDriver::IoUring => "io_uring",
            IoDriver::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The driver chosen and why, in words for the log, `ringlb check` and `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoChoice {
    pub driver: IoDriver,
    pub reason: String,
    /// `auto` fell back to epoll because io_uring cannot be used here.
    pub fallback: bool,
}

impl IoChoice {
    fn new(driver: IoDriver, reason: impl Into<String>) -> IoChoice {
        IoChoice {
            driver,
            reason: reason.into(),
            fallback: false,
        }
    }

    /// Builds this driver for one worker (on the worker's own thread: io_uring's
    /// SINGLE_ISSUER ties a ring to the thread that made it).
    pub(super) fn build(&self, rt: &Runtime) -> Result<Ring, EngineError> {
        Ok(match self.driver {
            IoDriver::IoUring => Ring::Uring(uring::Ring::new(
                rt.ring_entries,
                rt.buffer_count,
                rt.buffer_size,
            )?),
            IoDriver::Epoll => Ring::Epoll(epoll::Ring::new(rt.buffer_count, rt.buffer_size)?),
        })
    }
}

impl fmt::Display for IoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.driver, self.reason)
    }
}

/// The driver `rt` asks for on this host. `auto` probes io_uring with a ring of the configured
/// size (then closes it); an error only for a `RINGLB_IO` value that means nothing.
pub fn choose(rt: &Runtime) -> Result<IoChoice, EngineError> {
    let env = std::env::var(IO_ENV).ok();
    let (entries, count, size) = (rt.ring_entries, rt.buffer_count, rt.buffer_size);
    choose_with(rt.io, env.as_deref(), || probe(entries, count, size))
}

/// Sets up (and closes) one ring as a worker would, on a thread of its own: a ring's teardown
/// may queue work to the thread that made it, which interrupts that thread's next blocking
/// call with a timeout (EINTR), and the caller's thread must not pay for the probe.
fn probe(entries: u32, count: u32, size: u32) -> Result<(), UringError> {
    let prober = std::thread::Builder::new()
        .name("ringlb-io-probe".into())
        .spawn(move || uring::Ring::new(entries, count, size).map(drop));
    match prober.map(|t| t.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(UringError::Setup {
            what: "probe",
            error: std::io::Error::other("the probe thread panicked"),
        }),
        Err(error) => Err(UringError::Setup {
            what: "probe thread",
            error,
        }),
    }
}

/// [`choose`] with the override's value and the probe given (tests).
pub(super) fn choose_with(
    mode: IoMode,
    env: Option<&str>,
    probe: impl FnOnce() -> Result<(), UringError>,
) -> Result<IoChoice, EngineError> {
    match mode {
        IoMode::IoUring => {
            return Ok(IoChoice::new(
                IoDriver::IoUring,
                "runtime.io = \"io_uring\"",
            ))
        }
        IoMode::Epoll => return Ok(IoChoice::new(IoDriver::Epoll, "runtime.io = \"epoll\"")),
        IoMode::Auto => {}
    }
    match env.map(str::trim).filter(|v| !v.is_empty()) {
        None | Some("auto") => {}
        Some("epoll") => return Ok(IoChoice::new(IoDriver::Epoll, format!("{IO_ENV}=epoll"))),
        Some("io_uring") => {
            return Ok(IoChoice::new(
                IoDriver::IoUring,
                format!("{IO_ENV}=io_uring"),
            ))
        }
        Some(other) => return Err(EngineError::IoOverride(other.to_string())),
    }
    Ok(match probe() {
        Ok(()) => IoChoice::new(IoDriver::IoUring, "auto: io_uring works on this host"),
        Err(e) => IoChoice {
            driver: IoDriver::Epoll,
            reason: format!("auto: io_uring cannot be used here: {e}"),
            fallback: true,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Result<(), UringError> {
        Err(UringError::Forbidden)
    }

    #[test]
    fn the_config_then_the_override_then_the_probe_decide() {
        let ok = || Ok(());
        let uring = choose_with(IoMode::IoUring, Some("epoll"), refused).unwrap();
        assert_eq!(
            uring.driver,
            IoDriver::IoUring,
            "an explicit value is never overridden"
        );
        let epoll = choose_with(IoMode::Epoll, None, ok).unwrap();
        assert_eq!((epoll.driver, epoll.fallback), (IoDriver::Epoll, false));
        let forced = choose_with(IoMode::Auto, Some("epoll"), ok).unwrap();
        assert_eq!(forced.to_string(), "epoll (RINGLB_IO=epoll)");
        let probed = choose_with(IoMode::Auto, None, ok).unwrap();
        assert_eq!(probed.driver, IoDriver::IoUring);
        let fell = choose_with(IoMode::Auto, Some("auto"), refused).unwrap();
        assert!(fell.fallback && fell.driver == IoDriver::Epoll);
        assert!(fell.reason.contains("seccomp"), "{}", fell.reason);
        assert!(matches!(
            choose_with(IoMode::Auto, Some("uring"), ok),
            Err(EngineError::IoOverride(v)) if v == "uring"
        ));
    }

    /// Regression: a probe made on the caller's thread interrupted that thread's next read
    /// with a timeout (EINTR) when its ring was torn down.
    #[test]
    fn the_probe_leaves_the_calling_threads_blocking_calls_alone() {
        use std::io::Read;
        let probed = choose_with(IoMode::Auto, None, || probe(64, 16, 4096)).unwrap();
        assert!(probed.driver == IoDriver::IoUring || probed.fallback);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let e = s.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
    }
}
