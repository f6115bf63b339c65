//! `[runtime] io`: which I/O driver the workers use. `"auto"` (the default) uses io_uring where
//! the host allows it and epoll where it does not (a container's seccomp profile, the
//! `kernel.io_uring_disabled` sysctl, an old kernel); `"io_uring"` insists on io_uring (a start
//! where it cannot be used fails, naming the fix); `"epoll"` never tries io_uring.
//!
//! Only the value is checked here; probing the host is the engine's part, never this module's.

use std::fmt;

use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;

/// What `runtime.io` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    #[default]
    Auto,
    IoUring,
    Epoll,
}

impl IoMode {
    /// The values the key accepts, as written in the file.
    pub const NAMES: [&'static str; 3] = ["auto", "io_uring", "epoll"];

    pub fn parse(s: &str) -> Option<IoMode> {
        match s {
            "auto" => Some(IoMode::Auto),
            "io_uring" => Some(IoMode::IoUring),
            "epoll" => Some(IoMode::Epoll),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IoMode::Auto => "auto",
            IoMode::IoUring => "io_uring",
            IoMode::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks `io` if it is set; absent = auto.
pub(super) fn validate_io(
    check: &Checker,
    value: &Option<Spanned<String>>,
) -> Result<IoMode, ConfigError> {
    let Some(value) = value else {
        return Ok(IoMode::Auto);
    };
    IoMode::parse(value.get_ref()).ok_or_else(|| {
        check.err(
            &value.span(),
            format!(
                "runtime: `io` must be one of \"auto\", \"io_uring\", \"epoll\", got {:?}",
                value.get_ref()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::IoMode;
    use crate::config::{parse, Config, ConfigError};

    const TAIL: &str = "[[listener]]\nname = \"llm\"\nbind = \"127.0.0.1:8080\"\npool = \"gpu\"\n\
                        [[pool]]\nname = \"gpu\"\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n";

    /// `[runtime]` on line 1, the key on line 2.
    fn with(value: &str) -> Result<Config, ConfigError> {
        parse(&format!("[runtime]\nio = {value}\n{TAIL}"), "t.toml")
    }

    #[test]
    fn absent_is_auto_and_each_value_is_kept() {
        assert_eq!(parse(TAIL, "t.toml").unwrap().runtime.io, IoMode::Auto);
        for name in IoMode::NAMES {
            let cfg = with(&format!("{name:?}")).unwrap();
            assert_eq!(cfg.runtime.io.as_str(), name);
            assert!(
                cfg.summary().contains(&format!("io {name}")),
                "{}",
                cfg.summary()
            );
        }
    }

    #[test]
    fn a_bad_value_points_at_it() {
        let e = with("\"uring\"").unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:6: runtime: `io` must be one of \"auto\", \"io_uring\""),
            "{e}"
        );
        assert!(e.contains("got \"uring\""), "{e}");
        let number = with("1").unwrap_err().to_string();
        assert!(number.starts_with("t.toml:2:6:"), "{number}");
    }
}
