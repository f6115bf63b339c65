//! How many connections the process can hold: the binary raises the descriptor limit to what
//! the system allows ([`raise_nofile`], at start), and the server sizes its connection limit so
//! that every admitted client can also get its backend socket. A worker that hits EMFILE anyway (another part of the process holds descriptors)
//! backs off; this keeps that from being the normal way to find the limit.
//!
//! Must never lower a limit the operator raised, and never fail start-up over it.

use crate::config::Config;

use super::uring::{nofile, set_nofile_soft};

/// Descriptors kept for everything that is not a relayed stream: listeners, rings, eventfds,
/// the log, the admin and health-check sockets, a few in flight while connects are retried.
const RESERVED_FDS: u64 = 64;

/// Raises RLIMIT_NOFILE's soft limit to its hard limit and returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    let Ok((soft, hard)) = nofile() else {
        return 1024;
    };
    if soft < hard {
        match set_nofile_soft(hard) {
            Ok(()) => return hard,
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open files limit"),
        }
    }
    soft
}

/// Client connections the descriptor limit `nofile` leaves room for: two descriptors each
/// (client and backend socket), after `workers x listeners` listening sockets and a reserve.
pub fn capacity(nofile: u64, workers: usize, listeners: usize) -> u32 {
    let fixed = RESERVED_FDS + (workers as u64) * (listeners as u64 + 4);
    u32::try_from(nofile.saturating_sub(fixed) / 2)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The server's connection limit: `runtime.max_connections`, or the capacity of the current
/// descriptor limit when it is 0. A configured limit above that capacity is kept (the operator
/// may raise the limit later) but warned about, since clients past it meet EMFILE.
pub fn connection_limit(config: &Config, workers: usize) -> u32 {
    let nofile = nofile().map_or(1024, |(soft, _)| soft);
    let capacity = capacity(nofile, workers, config.listeners.len());
    let configured = config.runtime.max_connections;
    if configured == 0 {
        tracing::info!(
            nofile,
            max_connections = capacity,
            "connection limit from the open files limit"
        );
        return capacity;
    }
    if configured > capacity {
        tracing::warn!(
            nofile,
            max_connections = configured,
            capacity,
            "runtime.max_connections is above what the open files limit allows; raise LimitNOFILE"
        );
    }
    configured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_half_of_what_is_left() {
        assert_eq!(capacity(1024, 1, 1), (1024 - 64 - 5) / 2);
        assert_eq!(capacity(1_048_576, 2, 3), (1_048_576 - 64 - 14) / 2);
        assert_eq!(capacity(10, 4, 4), 1, "never zero");
    }

    #[test]
    fn raising_keeps_at_least_the_current_limit() {
        let (before, _) = nofile().unwrap();
        assert!(raise_nofile() >= before);
    }
}
