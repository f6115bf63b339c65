//! The compiled routing table of one listener: its rules in file order, its default pool, its
//! peek limits, and the session keys of the pools it can reach; and the first-match decision
//! over them.
//!
//! Built once per config (at validation time), shared by every connection of the listener
//! through an `Arc`, never changed afterwards. It must never hold per-connection state, and
//! [`Routes::needs_peek`] must stay false for a listener with nothing to decide, so that such
//! a listener costs nothing on the connection path.

use super::matcher::{Matcher, MatcherKind, Seen, Tri};
use std::fmt;
use std::time::Duration;

/// Default `peek_timeout`: a real client sends its first request (or ClientHello) within
/// milliseconds; five seconds also covers a slow mobile link, and closes a slowloris client.
pub const DEFAULT_PEEK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `peek_max`: 16 KiB holds any ClientHello seen in practice (post-quantum key shares
/// included, ~2 KiB) and request heads far above what inference clients send.
pub const DEFAULT_PEEK_MAX: usize = 16 * 1024;
/// Default `peek_body_max`: 256 KiB of JSON body read to find a top-level `model` that comes
/// after a long `messages` history (the OpenAI SDK writes `messages` first).
pub const DEFAULT_PEEK_BODY_MAX: usize = 256 * 1024;

/// A listener's peek limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeekSettings {
    /// The client must have sent enough to decide within this.
    pub timeout: Duration,
    /// Bytes of the connection's start (PROXY header and ClientHello or request head) read at
    /// most before deciding; past it without a decision the connection is rejected.
    pub max: usize,
    /// Bytes of request body read at most to find JSON members; past it they count as absent.
    pub body_max: usize,
    /// The connection starts with a PROXY protocol header (v1 or v2), required.
    pub accept_proxy: bool,
}

impl Default for PeekSettings {
    fn default() -> Self {
        PeekSettings {
            timeout: DEFAULT_PEEK_TIMEOUT,
            max: DEFAULT_PEEK_MAX,
            body_max: DEFAULT_PEEK_BODY_MAX,
            accept_proxy: false,
        }
    }
}

/// What a `hash` pool hashes instead of the client address, found by the peek.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionKey {
    /// `hash_key = "header:<name>"`: the first value of that request header (name lowercased).
    Header(String),
    /// `hash_key = "json:<key>"`: the top-level string member of the JSON body.
    Json(String),
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKey::Header(name) => write!(f, "header:{name}"),
            SessionKey::Json(key) => write!(f, "json:{key}"),
        }
    }
}

/// One `[[listener.route]]`: every matcher must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Index into `Config::pools`.
    pub pool: usize,
    pub matchers: Vec<Matcher>,
}

impl Rule {
    /// All matchers together; `finals` turns "not yet" into "no" (the peek is over).
    pub fn eval(&self, seen: &Seen<'_>, finals: bool) -> Tri {
        let mut result = Tri::Yes;
        for m in &self.matchers {
            match m.eval(seen) {
                Tri::No => return Tri::No,
                Tri::Unknown if finals => return Tri::No,
                Tri::Unknown => result = Tri::Unknown,
                Tri::Yes => {}
            }
        }
        result
    }

    /// The kinds of its matchers (both for a rule that can never match).
    pub fn kinds(&self) -> (bool, bool) {
        let tls = self.matchers.iter().any(|m| m.kind() == MatcherKind::Tls);
        let http = self.matchers.iter().any(|m| m.kind() == MatcherKind::Http);
        (tls, http)
    }

    /// Whether every connection this rule matches is matched by `earlier` too, so that after
    /// `earlier` it can never be chosen: each matcher of `earlier` is one of this rule's, or
    /// holds for every HTTP request while this rule only matches HTTP requests.
    pub fn shadowed_by(&self, earlier: &Rule) -> bool {
        let (_, http) = self.kinds();
        earlier
            .matchers
            .iter()
            .all(|m| self.matchers.contains(m) || (http && m.matches_every_request()))
    }
}

/// `path_prefix = "/v1", websocket = true`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// The first-match decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An undecided rule comes before any that holds: more bytes are needed.
    Wait,
    /// `rule` (None: no rule, the default pool) chose `pool`.
    Pool { pool: usize, rule: Option<usize> },
}

/// The routing table of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    default_pool: usize,
    rules: Vec<Rule>,
    settings: PeekSettings,
    /// (pool, key) for each `hash` pool this listener can reach that hashes a peeked key.
    session: Vec<(usize, SessionKey)>,
    /// JSON members the body scan looks for: `model` if a rule needs it, then json session
    /// keys, without duplicates.
    json_keys: Vec<String>,
    model_slot: Option<usize>,
    wants_tls: bool,
    wants_http: bool,
}

impl Routes {
    /// A listener that never peeks: every connection goes to `pool`.
    pub fn passthrough(pool: usize) -> Routes {
        Routes::new(pool, Vec::new(), PeekSettings::default(), &[])
    }

    /// The table for a listener whose default pool is `default_pool`. `pool_keys[p]` is the
    /// session key of pool `p` if it is a `hash` pool with one (missing entries: none).
    pub fn new(
        default_pool: usize,
        rules: Vec<Rule>,
        settings: PeekSettings,
        pool_keys: &[Option<SessionKey>],
    ) -> Routes {
        let mut reachable: Vec<usize> = std::iter::once(default_pool)
            .chain(rules.iter().map(|r| r.pool))
            .collect();
        reachable.sort_unstable();
        reachable.dedup();
        let session: Vec<(usize, SessionKey)> = reachable
            .iter()
            .filter_map(|&p| pool_keys.get(p).cloned().flatten().map(|k| (p, k)))
            .collect();
        let mut json_keys = Vec::new();
        let model_slot = rules
            .iter()
            .any(|r| r.matchers.iter().any(Matcher::needs_body))
            .then(|| {
                json_keys.push("model".to_string());
                0
            });
        for (_, key) in &session {
            if let SessionKey::Json(k) = key {
                if !json_keys.contains(k) {
                    json_keys.push(k.clone());
                }
            }
        }
        let wants_tls = rules.iter().any(|r| r.kinds().0);
        let wants_http = rules.iter().any(|r| r.kinds().1) || !session.is_empty();
        Routes {
            default_pool,
            rules,
            settings,
            session,
            json_keys,
            model_slot,
            wants_tls,
            wants_http,
        }
    }

    /// Whether connections of this listener must be peeked at all: it has rules, accepts
    /// PROXY headers, or reaches a pool hashing a header or JSON key. When false, the engine
    /// connects to [`Routes::default_pool`] at once, as before routing existed.
    pub fn needs_peek(&self) -> bool {
        !self.rules.is_empty() || self.settings.accept_proxy || !self.session.is_empty()
    }

    pub fn default_pool(&self) -> usize {
        self.default_pool
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn settings(&self) -> &PeekSettings {
        &self.settings
    }

    /// The most bytes a connection's peek makes the engine hold before it decides (the last
    /// receive may bring a little more): `peek_max` + `peek_body_max` when a body is read.
    pub fn peek_bytes_max(&self) -> usize {
        let body = if self.json_keys.is_empty() {
            0
        } else {
            self.settings.body_max
        };
        self.settings.max.saturating_add(body)
    }

    /// Session keys by pool (only `hash` pools this listener reaches).
    pub fn session_keys(&self) -> &[(usize, SessionKey)] {
        &self.session
    }

    /// The same table with every pool index passed through `map` (a reload keeps pools at
    /// the places the running engine knows them by).
    pub fn with_pools(&self, map: impl Fn(usize) -> usize) -> Routes {
        let mut r = self.clone();
        r.default_pool = map(r.default_pool);
        for rule in &mut r.rules {
            rule.pool = map(rule.pool);
        }
        for (pool, _) in &mut r.session {
            *pool = map(*pool);
        }
        r
    }

    pub(super) fn wants(&self) -> (bool, bool) {
        (self.wants_tls, self.wants_http)
    }

    pub(super) fn json_keys(&self) -> &[String] {
        &self.json_keys
    }

    pub(super) fn model_slot(&self) -> Option<usize> {
        self.model_slot
    }

    pub(super) fn session_key(&self, pool: usize) -> Option<&SessionKey> {
        self.session
            .iter()
            .find(|(p, _)| *p == pool)
            .map(|(_, k)| k)
    }

    /// First match wins; `finals`: nothing more will come, "not yet" counts as "no".
    pub fn decide(&self, seen: &Seen<'_>, finals: bool) -> Decision {
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.eval(seen, finals) {
                Tri::Yes => {
                    return Decision::Pool {
                        pool: rule.pool,
                        rule: Some(i),
                    }
                }
                Tri::No => {}
                Tri::Unknown => return Decision::Wait,
            }
        }
        Decision::Pool {
            pool: self.default_pool,
            rule: None,
        }
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
