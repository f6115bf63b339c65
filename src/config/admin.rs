//! The `[admin]` table: where the admin API listens and how it is protected.
//!
//! Absent, the admin API is off. A `bind` outside the loopback range needs a `token` (a bearer
//! token every endpoint then requires, `/metrics` too unless `metrics_public = true`): an
//! unprotected control endpoint on a network address would let anyone drain the fleet. This
//! module must never accept such a bind, nor a token that cannot be sent in an HTTP header.

use std::net::SocketAddr;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;
use super::Admin;

/// Sixteen characters: a token is a password to every drain and weight in the fleet, and one
/// shorter than that is within reach of guessing over the network.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[admin]` as written (see `raw` for why every key is optional and spanned).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [admin] table")]
pub(super) struct RawAdmin {
    pub bind: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
    pub metrics_public: Option<bool>,
}

/// Checks `[admin]`; `listener_binds` are the listeners' addresses (the admin API cannot share
/// one), with their names.
pub(super) fn validate_admin(
    check: &Checker,
    raw: Option<&Spanned<RawAdmin>>,
    listener_binds: &[(SocketAddr, String)],
    binds_conflict: fn(SocketAddr, SocketAddr) -> bool,
) -> Result<Option<Admin>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let ctx = "admin";
    let table: Range<usize> = raw.span();
    let a = raw.get_ref();
    let bind_value = check.required(&a.bind, &table, ctx, "bind")?;
    let bind = check.socket_addr(bind_value, ctx, "bind", "127.0.0.1:9090")?;
    if let Some((_, name)) = listener_binds
        .iter()
        .find(|(l, _)| binds_conflict(*l, bind))
    {
        return Err(check.err(
            &bind_value.span(),
            format!("{ctx}: `bind` {bind} overlaps the `bind` of listener {name:?}"),
        ));
    }
    let token = match &a.token {
        None => None,
        Some(t) => {
            let text = t.get_ref();
            if text.len() < MIN_TOKEN_LEN {
                return Err(check.err(
                    &t.span(),
                    format!(
                        "{ctx}: `token` must be at least {MIN_TOKEN_LEN} characters, got {}",
                        text.len()
                    ),
                ));
            }
            if !text.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(check.err(
                    &t.span(),
                    format!(
                        "{ctx}: `token` may hold only visible ASCII characters (no spaces), \
                         so that it fits in an Authorization header"
                    ),
                ));
            }
            Some(text.clone())
        }
    };
    if token.is_none() && !bind.ip().is_loopback() {
        return Err(check.err(
            &bind_value.span(),
            format!(
                "{ctx}: `bind` {bind} is not a loopback address; set `token` (at least \
                 {MIN_TOKEN_LEN} characters) so that the admin API is not open to the network"
            ),
        ));
    }
    Ok(Some(Admin {
        bind,
        token,
        metrics_public: a.metrics_public.unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, Config, ConfigError};

    const BASE: &str = "[[listener]]\nname = \"llm\"\nbind = \"127.0.0.1:8080\"\npool = \"gpu\"\n\
                        [[pool]]\nname = \"gpu\"\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n";

    /// BASE (lines 1-8), then `[admin]` on line 9 and `keys` from line 10 on.
    fn with_admin(keys: &str) -> Result<Config, ConfigError> {
        parse(&format!("{BASE}[admin]\n{keys}\n"), "t.toml")
    }

    fn error(keys: &str) -> String {
        match with_admin(keys) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn absent_is_off_and_loopback_needs_no_token() {
        let off = parse(BASE, "t.toml").unwrap();
        assert!(off.admin.is_none());
        assert_eq!(off.digest.len(), 12);
        let on = with_admin("bind = \"127.0.0.1:9090\"").unwrap();
        let admin = on.admin.clone().unwrap();
        assert_eq!(admin.bind.to_string(), "127.0.0.1:9090");
        assert!(admin.token.is_none() && !admin.metrics_public);
        assert_ne!(on.digest, off.digest, "the digest follows the file's bytes");
        assert!(on.summary().contains("admin: 127.0.0.1:9090 (no token)"));
    }

    #[test]
    fn network_bind_needs_a_token() {
        let msg = error("bind = \"0.0.0.0:9090\"");
        assert!(msg.starts_with("t.toml:10:8: admin: `bind` 0.0.0.0:9090 is not a loopback"));
        assert!(msg.contains("set `token`"), "{msg}");
        let ok = with_admin(
            "bind = \"0.0.0.0:9090\"\ntoken = \"0123456789abcdef\"\nmetrics_public = true",
        )
        .unwrap()
        .admin
        .unwrap();
        assert_eq!(ok.token.as_deref(), Some("0123456789abcdef"));
        assert!(ok.metrics_public);
    }

    #[test]
    fn bad_values_point_at_the_key() {
        let short = error("bind = \"127.0.0.1:9090\"\ntoken = \"short\"");
        assert!(short.starts_with("t.toml:11:9: admin: `token` must be at least 16"));
        let spaced = error("bind = \"127.0.0.1:9090\"\ntoken = \"0123456789 abcdef\"");
        assert!(spaced.contains("visible ASCII"), "{spaced}");
        let missing = error("metrics_public = true");
        assert!(missing.starts_with("t.toml:9:1: admin: missing required key `bind`"));
        let host = error("bind = \"localhost:9090\"");
        assert!(host.contains("host names are not resolved"), "{host}");
        let clash = error("bind = \"127.0.0.1:8080\"");
        assert!(
            clash.contains("overlaps the `bind` of listener \"llm\""),
            "{clash}"
        );
        let unknown = error("bind = \"127.0.0.1:9090\"\nport = 1");
        assert!(
            unknown.starts_with("t.toml:11:1: unknown key `port`"),
            "{unknown}"
        );
    }
}
