//! `[runtime] handover_socket`: the unix socket a running ringlb serves so that a new process
//! started with `ringlb run --take-over` can take its listening sockets (see
//! `crate::process::handover`). Absent = off.
//!
//! Only the path is checked here, never the file system: an absolute path (the process may
//! run from any directory, and the old and the new process must name the same file) that fits
//! in a unix socket address. This module must never create, open or stat the file.

use std::path::PathBuf;

use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;

/// Longest path a unix socket address holds: `sun_path` is 108 bytes with its NUL.
pub const MAX_HANDOVER_PATH: usize = 107;

/// The suggested value (a `RuntimeDirectory=ringlb` under systemd).
pub const SUGGESTED_HANDOVER_SOCKET: &str = "/run/ringlb/handover.sock";

/// Checks `handover_socket` if it is set.
pub(super) fn validate_handover_socket(
    check: &Checker,
    value: &Option<Spanned<String>>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let path = value.get_ref();
    let bad = |why: String| {
        check.err(
            &value.span(),
            format!("runtime: `handover_socket` {why}, e.g. {SUGGESTED_HANDOVER_SOCKET:?}"),
        )
    };
    if !path.starts_with('/') {
        return Err(bad(format!("must be an absolute path, got {path:?}")));
    }
    if path.ends_with('/') {
        return Err(bad(format!(
            "must name a file, not a directory, got {path:?}"
        )));
    }
    if path.contains('\0') {
        return Err(bad("must not contain a NUL byte".into()));
    }
    if path.len() > MAX_HANDOVER_PATH {
        return Err(bad(format!(
            "must be at most {MAX_HANDOVER_PATH} bytes (a unix socket address), got {}",
            path.len()
        )));
    }
    Ok(Some(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, Config, ConfigError};

    const TAIL: &str = "[[listener]]\nname = \"llm\"\nbind = \"127.0.0.1:8080\"\npool = \"gpu\"\n\
                        [[pool]]\nname = \"gpu\"\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n";

    /// `[runtime]` on line 1, the key on line 2.
    fn with(value: &str) -> Result<Config, ConfigError> {
        parse(
            &format!("[runtime]\nhandover_socket = {value}\n{TAIL}"),
            "t.toml",
        )
    }

    #[test]
    fn absent_is_off_and_an_absolute_path_is_kept() {
        assert!(parse(TAIL, "t.toml")
            .unwrap()
            .runtime
            .handover_socket
            .is_none());
        let on = with("\"/run/ringlb/handover.sock\"").unwrap();
        assert_eq!(
            on.runtime.handover_socket.as_deref(),
            Some(std::path::Path::new("/run/ringlb/handover.sock"))
        );
        assert!(on
            .summary()
            .contains("handover socket: /run/ringlb/handover.sock"));
    }

    #[test]
    fn bad_paths_point_at_the_value() {
        let relative = with("\"handover.sock\"").unwrap_err().to_string();
        assert!(
            relative
                .starts_with("t.toml:2:19: runtime: `handover_socket` must be an absolute path"),
            "{relative}"
        );
        assert!(relative.contains("/run/ringlb/handover.sock"), "{relative}");
        let dir = with("\"/run/ringlb/\"").unwrap_err().to_string();
        assert!(dir.contains("not a directory"), "{dir}");
        let long = format!("\"/{}\"", "x".repeat(120));
        let long = with(&long).unwrap_err().to_string();
        assert!(long.contains("at most 107 bytes"), "{long}");
        let number = with("1").unwrap_err().to_string();
        assert!(number.starts_with("t.toml:2:19:"), "{number}");
    }
}
