//! Who may use the admin API: with a configured token, a request must carry it, as
//! `Authorization: Bearer TOKEN` (scripts, Prometheus' `authorization` block) or as the password
//! of HTTP Basic auth with any user name (what a browser prompts for on the status page).
//!
//! The comparison takes the same time whatever the first wrong byte is. This module must never
//! log a token nor say how a presented one differs from the real one.

use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION};

/// What a request needs for one endpoint.
#[derive(Clone, Debug)]
pub(super) struct Access {
    token: Option<String>,
    metrics_public: bool,
}

impl Access {
    pub(super) fn new(token: Option<String>, metrics_public: bool) -> Self {
        Self {
            token,
            metrics_public,
        }
    }

    /// True if a request to `path` with `headers` may be served.
    pub(super) fn allows(&self, path: &str, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if path == "/metrics" && self.metrics_public {
            return true;
        }
        headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(presented)
            .any(|p| same(p.as_bytes(), token.as_bytes()))
    }
}

/// The token a header value carries, Bearer or Basic (the password part).
fn presented(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Constant-time equality (for equal lengths; the length of a token is no secret worth
/// keeping).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const TOKEN: &str = "0123456789abcdef";

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let a = Access::new(Some(TOKEN.into()), false);
        assert!(a.allows("/status", &with(&format!("Bearer {TOKEN}"))));
        assert!(a.allows("/status", &with(&format!("bearer  {TOKEN} "))));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("ops:{TOKEN}"));
        assert!(a.allows("/", &with(&format!("Basic {basic}"))));
        assert!(!a.allows("/status", &HeaderMap::new()));
        assert!(!a.allows("/status", &with("Bearer 0123456789abcdeF")));
        assert!(!a.allows("/status", &with("Basic !!!")));
        assert!(!a.allows("/status", &with(TOKEN)));
        assert!(
            !a.allows("/metrics", &HeaderMap::new()),
            "not public by default"
        );
    }

    #[test]
    fn no_token_is_open_and_metrics_can_be_public() {
        assert!(Access::new(None, false).allows("/status", &HeaderMap::new()));
        let a = Access::new(Some(TOKEN.into()), true);
        assert!(a.allows("/metrics", &HeaderMap::new()));
        assert!(!a.allows("/status", &HeaderMap::new()));
    }
}
