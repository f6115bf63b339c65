//! `POST /pools/{pool}/backends/{addr}/drain`, `/enable` and `/weight`: operator overrides.
//! The weight comes from `?weight=N`, or from the body as `N` or `{"weight": N}`. Path
//! segments are percent-decoded, so `[::1]:9001` may be sent as `%5B%3A%3A1%5D%3A9001`.
//!
//! Answers are JSON: `{pool, backend, state, override}` on success, `{error}` otherwise. This
//! module only parses and answers; the change itself is `AdminState::change`. It must never
//! apply a change it could not parse completely.

use std::net::SocketAddr;

use hyper::StatusCode;

use super::overrides::Change;
use super::state::{ActionError, AdminState};

/// The largest body accepted: a weight in JSON is a few bytes.
pub(super) const MAX_BODY: usize = 1024;

/// A backend action as parsed from the path, before its weight is known.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub pool: String,
    pub addr: SocketAddr,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Drain,
    Enable,
    Weight,
}

/// What a path under `/pools/` means: None if it is not a backend action at all (404);
/// Err with a message if it is one with a bad address (400).
pub(super) fn parse_path(path: &str) -> Option<Result<Target, String>> {
    let rest = path.strip_prefix("/pools/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [pool, "backends", addr, action] = parts.as_slice() else {
        return None;
    };
    let action = match *action {
        "drain" => Action::Drain,
        "enable" => Action::Enable,
        "weight" => Action::Weight,
        _ => return None,
    };
    let pool = percent_decode(pool)?;
    let addr_text = percent_decode(addr)?;
    Some(
        addr_text
            .parse::<SocketAddr>()
            .map(|addr| Target { pool, addr, action })
            .map_err(|_| format!("backend address {addr_text:?} is not IP:port")),
    )
}

/// The weight of a `/weight` request, from the query or else the body.
pub(super) fn parse_weight(query: Option<&str>, body: &[u8]) -> Result<u32, String> {
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("weight="))
            .map(str::to_owned)
    });
    let text = match from_query {
        Some(q) => q,
        None => {
            let body = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
            match serde_json::from_str::<serde_json::Value>(body.trim()) {
                Ok(serde_json::Value::Object(m)) => match m.get("weight") {
                    Some(w) => w.to_string(),
                    None => return Err("JSON body has no \"weight\"".into()),
                },
                _ => body.trim().to_owned(),
            }
        }
    };
    if text.is_empty() {
        return Err("give the weight as ?weight=N or in the body".into());
    }
    text.parse::<u32>()
        .map_err(|_| format!("weight {text:?} is not a whole number"))
}

/// Runs the action; (status, JSON body).
pub(super) fn apply(
    state: &AdminState,
    target: &Target,
    weight: Option<u32>,
) -> (StatusCode, String) {
    let change = match (target.action, weight) {
        (Action::Drain, _) => Change::Drain,
        (Action::Enable, _) => Change::Enable,
        (Action::Weight, Some(w)) => Change::Weight(w),
        (Action::Weight, None) => return error(StatusCode::BAD_REQUEST, "missing weight"),
    };
    match state.change(&target.pool, target.addr, change) {
        Ok(set) => {
            let drained = set.drain;
            let body = serde_json::json!({
                "pool": target.pool,
                "backend": target.addr.to_string(),
                "state": if drained { "draining" } else { "enabled" },
                "override": set,
            });
            (StatusCode::OK, body.to_string())
        }
        Err(e) => {
            let status = match e {
                ActionError::UnknownPool(_) | ActionError::UnknownBackend { .. } => {
                    StatusCode::NOT_FOUND
                }
                ActionError::BadWeight { .. } => StatusCode::BAD_REQUEST,
            };
            error(status, &e.to_string())
        }
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> (StatusCode, String) {
    (status, serde_json::json!({ "error": message }).to_string())
}

/// Decodes `%XX` escapes; None for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_escapes_and_reject_the_rest() {
        let t = parse_path("/pools/gpu/backends/127.0.0.1:9001/drain")
            .unwrap()
            .unwrap();
        assert_eq!((t.pool.as_str(), t.action), ("gpu", Action::Drain));
        assert_eq!(t.addr.to_string(), "127.0.0.1:9001");
        let v6 = parse_path("/pools/a%20b/backends/%5B%3A%3A1%5D%3A9001/weight")
            .unwrap()
            .unwrap();
        assert_eq!(
            (v6.pool.as_str(), v6.addr.to_string()),
            ("a b", "[::1]:9001".into())
        );
        assert!(parse_path("/pools/gpu/backends/nope/enable")
            .unwrap()
            .is_err());
        assert!(parse_path("/pools/gpu/backends/127.0.0.1:1/explode").is_none());
        assert!(parse_path("/pools/gpu/127.0.0.1:1/drain").is_none());
        assert!(parse_path("/pools/gpu/backends/%zz/drain").is_none());
        assert!(parse_path("/status").is_none());
    }

    #[test]
    fn weights_come_from_the_query_or_the_body() {
        assert_eq!(parse_weight(Some("x=1&weight=7"), b""), Ok(7));
        assert_eq!(parse_weight(None, b" 3\n"), Ok(3));
        assert_eq!(parse_weight(None, br#"{"weight": 12}"#), Ok(12));
        assert!(parse_weight(None, b"").is_err());
        assert!(parse_weight(None, br#"{"w": 1}"#).is_err());
        assert!(parse_weight(None, b"-1").is_err());
        assert!(parse_weight(Some("weight=1.5"), b"").is_err());
        assert!(parse_weight(None, br#"{"weight": "x"}"#).is_err());
    }
}
