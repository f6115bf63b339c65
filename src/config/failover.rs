//! The `[[pool]]` keys that decide what happens when a backend fails a stream before its
//! first byte: how many of the client's first bytes ringlb keeps to replay them to another
//! backend (`replay_buffer`), and how long a backend may stay silent after the request
//! (`first_byte_timeout`). This module only checks and types the keys; it must never apply
//! them (the engine's policy does).

use std::time::Duration;

use super::checks::Checker;
use super::error::ConfigError;
use super::raw::RawPool;

/// 64 KiB holds the request of nearly every inference call (a prompt of a few thousand tokens
/// is 10-30 KB of JSON) while bounding what a connection waiting for its first byte pins.
pub const DEFAULT_REPLAY_BUFFER: u32 = 64 * 1024;
/// Far above anything a stream would need to replay (a client still uploading past this is
/// no request that can be moved invisibly).
pub const MAX_REPLAY_BUFFER: u32 = 16 * 1024 * 1024;

/// What a pool does when a backend fails a stream before answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    /// The client's first bytes kept until the backend's first byte (0 = no replay): a backend
    /// that resets or closes before answering gets them replayed to another one, unseen by
    /// the client.
    pub replay_buffer: u32,
    /// No byte from the backend this long after the client's first byte went to it: a passive
    /// failure, then a replay (or a reset when the bytes are no longer held). Zero = off:
    /// inference time to first token can be long, so only an operator knows the bound.
    pub first_byte_timeout: Duration,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            replay_buffer: DEFAULT_REPLAY_BUFFER,
            first_byte_timeout: Duration::ZERO,
        }
    }
}

pub(super) fn validate_failover(
    check: &Checker,
    ctx: &str,
    p: &RawPool,
) -> Result<Failover, ConfigError> {
    let replay_buffer = check.int(
        &p.replay_buffer,
        ctx,
        "replay_buffer",
        (0, i64::from(MAX_REPLAY_BUFFER)),
        i64::from(DEFAULT_REPLAY_BUFFER),
    )? as u32;
    let first_byte_timeout = check.duration_or_zero(
        &p.first_byte_timeout,
        ctx,
        "first_byte_timeout",
        Duration::ZERO,
    )?;
    Ok(Failover {
        replay_buffer,
        first_byte_timeout,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn pool(keys: &str) -> String {
        format!(
            "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\n\
             [[pool]]\nname = \"p\"\n{keys}\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n"
        )
    }

    #[test]
    fn defaults_keep_64_kib_and_no_first_byte_timeout() {
        let c = parse(&pool(""), "t.toml").expect("valid");
        assert_eq!(c.pools[0].failover.replay_buffer, 65536);
        assert!(c.pools[0].failover.first_byte_timeout.is_zero());
    }

    #[test]
    fn keys_are_read_and_bad_values_name_the_key_and_place() {
        let c = parse(
            &pool("replay_buffer = 0\nfirst_byte_timeout = \"30s\""),
            "t.toml",
        )
        .expect("valid");
        assert_eq!(c.pools[0].failover.replay_buffer, 0);
        assert_eq!(c.pools[0].failover.first_byte_timeout.as_secs(), 30);
        let e = parse(&pool("replay_buffer = -1"), "t.toml").expect_err("negative");
        let msg = e.to_string();
        assert!(
            msg.contains("replay_buffer") && msg.contains("t.toml:8"),
            "{msg}"
        );
    }
}
