//! One condition of a routing rule (`sni`, `alpn`, `method`, `path`, `path_prefix`, `host`,
//! `header`, `websocket`, `model`) and how it is judged against what the peek has seen so far.
//!
//! A matcher answers yes, no, or not yet ([`Tri`]): "not yet" while the protocol is not known,
//! or while the JSON body has not yet shown its top-level `model`. Every answer other than
//! "not yet" is final: more bytes never turn a yes into a no, which is what makes routing
//! independent of how the bytes were split. TLS matchers never match an HTTP request and HTTP
//! matchers never a TLS connection; nothing matches bytes that are neither. This module must
//! never look at raw bytes itself (the parsers do) and never allocate while judging.

use super::glob::Glob;
use super::http::HttpHead;
use super::tls::ClientHello;
use std::fmt;

/// Yes, no, or not yet known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    No,
    Yes,
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }
}

/// Which kind of connection a matcher can match at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatcherKind {
    /// A TLS ClientHello.
    Tls,
    /// An HTTP/1.x request head (and its body, for `model`).
    Http,
}

/// One condition. Lists match when any of their entries does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// The ClientHello's server name (globs, case-insensitive); no SNI never matches.
    Sni(Vec<Glob>),
    /// Any ALPN protocol the client offers (globs, case-sensitive).
    Alpn(Vec<Glob>),
    /// The request method (globs, case-sensitive: `POST`, not `post`).
    Method(Vec<Glob>),
    /// The path without query (globs, case-sensitive; a glob without `*` or `?` is exact).
    Path(Vec<Glob>),
    /// The path without query starts with one of these (plain prefixes, case-sensitive).
    PathPrefix(Vec<String>),
    /// The host, port stripped (globs, case-insensitive); no host never matches.
    Host(Vec<Glob>),
    /// Some value of header `name` (any case) matches `value` (a glob, case-sensitive).
    Header { name: String, value: Glob },
    /// The request is (true) or is not (false) a WebSocket upgrade.
    WebSocket(bool),
    /// The top-level `"model"` string of the JSON body (globs, case-sensitive); a body
    /// without one (or not JSON, or past `peek_body_max`) never matches.
    Model(Vec<Glob>),
}

/// What the peek knows when it judges.
#[derive(Clone, Copy, Debug)]
pub enum Seen<'a> {
    /// Not enough bytes to tell the protocol.
    Unknown,
    Tls(&'a ClientHello),
    /// A request head, and the body's top-level `model`: None while the scan goes on,
    /// Some(None) once known to be absent (or not a string), Some(Some(value)) if found.
    Http(&'a HttpHead, Option<Option<&'a str>>),
    /// Neither TLS nor HTTP/1.x (or not worth reading: no rule looks at it).
    Other,
}

impl Matcher {
    pub fn kind(&self) -> MatcherKind {
        match self {
            Matcher::Sni(_) | Matcher::Alpn(_) => MatcherKind::Tls,
            _ => MatcherKind::Http,
        }
    }

    /// The config key it is written with.
    pub fn key(&self) -> &'static str {
        match self {
            Matcher::Sni(_) => "sni",
            Matcher::Alpn(_) => "alpn",
            Matcher::Method(_) => "method",
            Matcher::Path(_) => "path",
            Matcher::PathPrefix(_) => "path_prefix",
            Matcher::Host(_) => "host",
            Matcher::Header { .. } => "header",
            Matcher::WebSocket(_) => "websocket",
            Matcher::Model(_) => "model",
        }
    }

    /// Whether it holds for every HTTP request with an origin-form target: `method = "*"`,
    /// `path = "*"` or `path_prefix = "/"`. (No TLS matcher holds for every ClientHello:
    /// SNI and ALPN may be absent.) The config uses it to find rules that can never match.
    pub fn matches_every_request(&self) -> bool {
        match self {
            Matcher::Method(globs) | Matcher::Path(globs) => globs.iter().any(Glob::is_star),
            Matcher::PathPrefix(prefixes) => prefixes.iter().any(|p| p.is_empty() || p == "/"),
            _ => false,
        }
    }

    /// Whether judging it may need the request body.
    pub fn needs_body(&self) -> bool {
        matches!(self, Matcher::Model(_))
    }

    pub fn eval(&self, seen: &Seen<'_>) -> Tri {
        let any = |globs: &[Glob], v: &str| Tri::from_bool(globs.iter().any(|g| g.matches_str(v)));
        match (self, seen) {
            (_, Seen::Unknown) => Tri::Unknown,
            (_, Seen::Other) => Tri::No,
            (Matcher::Sni(globs), Seen::Tls(h)) => {
                h.sni.as_deref().map_or(Tri::No, |s| any(globs, s))
            }
            (Matcher::Alpn(globs), Seen::Tls(h)) => {
                Tri::from_bool(h.alpn.iter().any(|p| any(globs, p) == Tri::Yes))
            }
            (_, Seen::Tls(_)) => Tri::No,
            (Matcher::Sni(_) | Matcher::Alpn(_), Seen::Http(..)) => Tri::No,
            (Matcher::Method(globs), Seen::Http(h, _)) => any(globs, &h.method),
            (Matcher::Path(globs), Seen::Http(h, _)) => any(globs, &h.path),
            (Matcher::PathPrefix(prefixes), Seen::Http(h, _)) => {
                Tri::from_bool(prefixes.iter().any(|p| h.path.starts_with(p.as_str())))
            }
            (Matcher::Host(globs), Seen::Http(h, _)) => {
                h.host.as_deref().map_or(Tri::No, |v| any(globs, v))
            }
            (Matcher::Header { name, value }, Seen::Http(h, _)) => {
                Tri::from_bool(h.header_all(name).any(|v| value.matches_str(v)))
            }
            (Matcher::WebSocket(want), Seen::Http(h, _)) => Tri::from_bool(h.websocket == *want),
            (Matcher::Model(globs), Seen::Http(_, model)) => match model {
                None => Tri::Unknown,
                Some(None) => Tri::No,
                Some(Some(m)) => any(globs, m),
            },
        }
    }
}

fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    if let [one] = items {
        return write!(f, "{one}");
    }
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str("]")
}

/// As the config writes it: `path_prefix = "/v1"`, `sni = ["a.example", "*.b.example"]`.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = ", self.key())?;
        match self {
            Matcher::Sni(g)
            | Matcher::Alpn(g)
            | Matcher::Method(g)
            | Matcher::Path(g)
            | Matcher::Host(g)
            | Matcher::Model(g) => list(f, g),
            Matcher::PathPrefix(p) => {
                let quoted: Vec<String> = p.iter().map(|s| format!("{s:?}")).collect();
                list(f, &quoted)
            }
            Matcher::Header { name, value } => {
                write!(f, "{{ name = {name:?}, value = {value} }}")
            }
            Matcher::WebSocket(b) => write!(f, "{b}"),
        }
    }
}
