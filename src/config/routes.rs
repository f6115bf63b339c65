//! Content routing in the config: a listener's peek keys (`peek_timeout`, `peek_max`,
//! `peek_body_max`, `accept_proxy`) and its `[[listener.route]]` tables, compiled into the
//! [`Routes`] the engine's peek uses; and the pool keys that go with it (`send_proxy`, and
//! `hash_key = "header:<name>"` / `"json:<key>"`).
//!
//! A table that passes has a known pool, at least one matcher, valid globs, and can match
//! something: a rule that mixes TLS and HTTP matchers, or that an earlier rule shadows (see
//! [`Rule::shadowed_by`]: an earlier rule whose matchers are a subset of its own, or one whose
//! every matcher holds for every HTTP request: `method = "*"`, `path = "*"`,
//! `path_prefix = "/"`), is refused with its place in the file. This must never let through a
//! rule that needs the body (`model`, a json session key) on a listener that reads none.

use super::checks::Checker;
use super::error::ConfigError;
use super::limits::*;
use super::raw::RawListener;
use super::route_matchers::{matchers, RawRoute};
use super::{Balance, HashKey, Pool};
use crate::route::{PeekSettings, ProxyVersion, Routes, Rule, SessionKey};
use std::collections::HashMap;
use std::ops::Range;
use toml::Spanned;

/// "defined pools: ..." (sorted), or that there is none: the tail of an unknown-pool message.
pub(super) fn known_pools(pools: &[Pool]) -> String {
    let mut known: Vec<String> = pools.iter().map(|p| format!("{:?}", p.name)).collect();
    known.sort();
    if known.is_empty() {
        "no [[pool]] is defined".to_string()
    } else {
        format!("defined pools: {}", known.join(", "))
    }
}

/// The index of the pool `value` names, or an error at `value` listing the pools defined.
pub(super) fn pool_named(
    check: &Checker,
    ctx: &str,
    value: &Spanned<String>,
    pool_index: &HashMap<String, (usize, Range<usize>)>,
    pools: &[Pool],
) -> Result<usize, ConfigError> {
    pool_index
        .get(value.get_ref())
        .map(|(index, _)| *index)
        .ok_or_else(|| {
            check.err(
                &value.span(),
                format!(
                    "{ctx}: `pool` names unknown pool {:?}; {}",
                    value.get_ref(),
                    known_pools(pools)
                ),
            )
        })
}

/// A listener's routing table, checked; `default_pool` is its `pool`.
pub(super) fn validate_routes(
    check: &Checker,
    ctx: &str,
    l: &RawListener,
    default_pool: usize,
    pool_index: &HashMap<String, (usize, Range<usize>)>,
    pools: &[Pool],
) -> Result<Routes, ConfigError> {
    let settings = PeekSettings {
        timeout: check.timeout(&l.peek_timeout, ctx, "peek_timeout", DEFAULT_PEEK_TIMEOUT)?,
        max: check.size(
            &l.peek_max,
            ctx,
            "peek_max",
            (MIN_PEEK_MAX, MAX_PEEK_MAX),
            DEFAULT_PEEK_MAX,
        )? as usize,
        body_max: check.size(
            &l.peek_body_max,
            ctx,
            "peek_body_max",
            (0, MAX_PEEK_BODY_MAX),
            DEFAULT_PEEK_BODY_MAX,
        )? as usize,
        accept_proxy: l.accept_proxy.as_ref().is_some_and(|b| *b.get_ref()),
    };
    let mut rules: Vec<(Rule, Range<usize>)> = Vec::with_capacity(l.route.len());
    for (i, raw) in l.route.iter().enumerate() {
        let rctx = format!("{ctx} route {}", i + 1);
        let table = raw.span();
        let r: &RawRoute = raw.get_ref();
        let pool_value = check.required(&r.pool, &table, &rctx, "pool")?;
        let pool = pool_named(check, &rctx, pool_value, pool_index, pools)?;
        let rule = Rule {
            pool,
            matchers: matchers(check, &rctx, r)?,
        };
        if rule.matchers.is_empty() {
            return Err(check.err(
                &table,
                format!(
                    "{rctx}: has no matcher; give it at least one of sni, alpn, method, path, \
                     path_prefix, host, header, websocket, model (connections no rule matches \
                     go to the listener's `pool`)"
                ),
            ));
        }
        if rule.kinds() == (true, true) {
            return Err(check.err(
                &table,
                format!(
                    "{rctx}: can never match: it mixes TLS matchers (sni, alpn) with HTTP \
                     matchers, and a connection is either a TLS ClientHello or an HTTP request"
                ),
            ));
        }
        if rule.matchers.iter().any(|m| m.needs_body()) && settings.body_max == 0 {
            return Err(check.err(
                &table,
                format!(
                    "{rctx}: `model` reads the request body, but this listener's \
                     `peek_body_max` is 0; raise it (default {}) or drop the matcher",
                    super::size::format_size(DEFAULT_PEEK_BODY_MAX)
                ),
            ));
        }
        if let Some((j, (earlier, span))) = rules
            .iter()
            .enumerate()
            .find(|(_, (earlier, _))| rule.shadowed_by(earlier))
        {
            let why = if earlier.matchers.iter().all(|m| m.matches_every_request()) {
                format!("matches every HTTP request ({earlier})")
            } else {
                format!("takes every connection this one would ({earlier})")
            };
            return Err(check.err(
                &table,
                format!(
                    "{rctx}: can never match: route {} (line {}) before it {why}",
                    j + 1,
                    check.loc.line_of(span)
                ),
            ));
        }
        rules.push((rule, table));
    }
    let pool_keys: Vec<Option<SessionKey>> = pools
        .iter()
        .map(|p| {
            (p.balance == Balance::Hash)
                .then(|| p.session_key.clone())
                .flatten()
        })
        .collect();
    let routes = Routes::new(
        default_pool,
        rules.into_iter().map(|(r, _)| r).collect(),
        settings,
        &pool_keys,
    );
    if settings.body_max == 0 {
        let json = routes.session_keys().iter().find_map(|(p, k)| match k {
            SessionKey::Json(_) => Some((p, k)),
            SessionKey::Header(_) => None,
        });
        if let (Some((p, key)), Some(value)) = (json, &l.peek_body_max) {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `peek_body_max` is 0, but pool {:?} it sends to hashes \
                     `hash_key = \"{key}\"`, which is read from the request body",
                    pools.get(*p).map_or("?", |p| p.name.as_str())
                ),
            ));
        }
    }
    Ok(routes)
}

/// A pool's `hash_key`: what the balance table hashes, and the peeked session key if any
/// (`header:<name>`, `json:<key>`; the table then falls back to the client IP when the peek
/// found no value).
pub(super) fn hash_key(
    check: &Checker,
    ctx: &str,
    value: &Spanned<String>,
) -> Result<(HashKey, Option<SessionKey>), ConfigError> {
    let text = value.get_ref().as_str();
    if let Some(key) = HashKey::from_name(text) {
        return Ok((key, None));
    }
    let bad = |why: String| check.err(&value.span(), format!("{ctx}: `hash_key` {text:?} {why}"));
    let session = if let Some(name) = text.strip_prefix("header:") {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(bad(
                "must name a header: `header:` then a header name such as \
                            x-session-id"
                    .into(),
            ));
        }
        SessionKey::Header(name.to_ascii_lowercase())
    } else if let Some(key) = text.strip_prefix("json:") {
        if key.is_empty() || key.len() > MAX_SESSION_KEY_LEN || key.chars().any(char::is_control) {
            return Err(bad(format!(
                "must name a top-level JSON member: `json:` then 1 to {MAX_SESSION_KEY_LEN} \
                 characters, such as json:user"
            )));
        }
        SessionKey::Json(key.to_string())
    } else {
        let allowed: Vec<String> = HashKey::ALL
            .iter()
            .map(|k| format!("{:?}", k.as_str()))
            .chain(["\"header:<name>\"".into(), "\"json:<key>\"".into()])
            .collect();
        return Err(check.err(
            &value.span(),
            format!(
                "{ctx}: unknown `hash_key` {text:?}; allowed: {}",
                allowed.join(", ")
            ),
        ));
    };
    Ok((HashKey::ClientIp, Some(session)))
}

/// An HTTP token character (RFC 9110 5.6.2): what a header name is made of.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A pool's `send_proxy`: None = off.
pub(super) fn send_proxy(
    check: &Checker,
    ctx: &str,
    value: &Option<Spanned<String>>,
) -> Result<Option<ProxyVersion>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.get_ref().as_str() {
        "v1" => Ok(Some(ProxyVersion::V1)),
        "v2" => Ok(Some(ProxyVersion::V2)),
        other => Err(check.err(
            &value.span(),
            format!(
                "{ctx}: unknown `send_proxy` {other:?}; allowed: \"v1\", \"v2\" (leave it out \
                 to send no PROXY header)"
            ),
        )),
    }
}
