//! The per-connection routing decision the engine drives while a new client's first bytes
//! arrive: PROXY header (on `accept_proxy` listeners), then the protocol (TLS ClientHello,
//! HTTP/1.x request head, or anything else), then, only if a rule still in play needs it, the
//! JSON body up to `peek_body_max`; then a [`Verdict`].
//!
//! The engine keeps every received byte contiguous (it must relay them unchanged afterwards)
//! and calls [`Peek::feed`] with all of them after each receive; the heads are parsed again
//! each time (cheap, and nothing of them is kept until complete), the body is scanned once,
//! from where the previous call stopped. Bytes arriving one at a time give the same verdict as
//! one chunk. A `Peek` is small (see the size test) and holds nothing large inline. It must
//! never panic, whatever the bytes or a misbehaving caller (a shorter buffer than last time),
//! never read past `peek_max` before the body nor past `peek_body_max` of body, and never
//! change its verdict once given.

use super::http::{parse_head, HttpHead, HttpParse};
use super::matcher::Seen;
use super::peek_body::HttpPeek;
use super::proxy::{parse_proxy, ProxyHeader, ProxyParse};
use super::rules::{Decision, Routes};
use super::tls::{parse_client_hello, TlsParse};
use std::sync::Arc;

/// Why a connection is closed without reaching a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `peek_timeout` passed before enough bytes to decide (nothing, or an unfinished head).
    Timeout,
    /// `peek_max` bytes arrived and the ClientHello or request head was still not complete.
    PeekMax,
    /// An `accept_proxy` listener got no valid PROXY header.
    BadProxy,
    /// The client closed before sending a byte (after its PROXY header, if any).
    Closed,
}

impl Reason {
    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "peek_timeout",
            Reason::PeekMax => "peek_max",
            Reason::BadProxy => "bad_proxy",
            Reason::Closed => "peek_closed",
        }
    }
}

/// What to do with the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Receive more, then call [`Peek::feed`] again (or `on_eof` / `on_timeout`).
    NeedMore,
    Route {
        /// Index into `Config::pools`.
        pool: usize,
        /// The rule that chose it (index into [`Routes::rules`]); None = the default pool.
        rule: Option<usize>,
        /// The session hash for a `hash` pool with a header or JSON `hash_key`, when that
        /// value was found; None = hash the client address as usual.
        hash: Option<u64>,
        /// The PROXY header the client side sent (`accept_proxy`): its `src` is the client.
        proxy: Option<ProxyHeader>,
        /// Leading bytes not to relay (the PROXY header); relay `buf[skip..]`.
        skip: usize,
        /// The body scan reached `peek_body_max` before the decision could be made: the JSON
        /// members it sought counted as absent (to be counted by the engine).
        body_capped: bool,
    },
    Reject(Reason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Eof,
    Timeout,
}

/// One connection's peek.
#[derive(Debug)]
pub struct Peek {
    routes: Arc<Routes>,
    st: State,
}

#[derive(Debug)]
struct State {
    proxy: Option<Box<ProxyHeader>>,
    /// Bytes of the PROXY header (0 without one).
    skip: u32,
    proxy_read: bool,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// Reading the PROXY header or telling the protocol.
    Start,
    /// The request head is complete; the body may be scanned.
    Http(Box<HttpPeek>),
    Done(Box<Verdict>),
}

impl Peek {
    pub fn new(routes: Arc<Routes>) -> Peek {
        let proxy_read = !routes.settings().accept_proxy;
        Peek {
            routes,
            st: State {
                proxy: None,
                skip: 0,
                proxy_read,
                stage: Stage::Start,
            },
        }
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// `buf` holds every byte the client sent so far. NeedMore, or the final verdict (which
    /// every later call repeats).
    pub fn feed(&mut self, buf: &[u8]) -> Verdict {
        self.st.step(&self.routes, buf, None)
    }

    /// The client half-closed (FIN) with `buf` received: decide with what is there.
    pub fn on_eof(&mut self, buf: &[u8]) -> Verdict {
        self.st.step(&self.routes, buf, Some(End::Eof))
    }

    /// `peek_timeout` passed with `buf` received: decide with what is there, or reject.
    pub fn on_timeout(&mut self, buf: &[u8]) -> Verdict {
        self.st.step(&self.routes, buf, Some(End::Timeout))
    }
}

impl State {
    fn step(&mut self, routes: &Routes, buf: &[u8], end: Option<End>) -> Verdict {
        if let Stage::Done(v) = &self.stage {
            return (**v).clone();
        }
        let v = self.run(routes, buf, end);
        if v != Verdict::NeedMore {
            self.stage = Stage::Done(Box::new(v.clone()));
        }
        v
    }

    fn route(&self, pool: usize, rule: Option<usize>, hash: Option<u64>, capped: bool) -> Verdict {
        Verdict::Route {
            pool,
            rule,
            hash,
            proxy: self.proxy.as_deref().copied(),
            skip: self.skip as usize,
            body_capped: capped,
        }
    }

    /// The verdict for a connection that is not HTTP (or whose head never came).
    fn not_http(&self, routes: &Routes, seen: &Seen<'_>) -> Verdict {
        match routes.decide(seen, true) {
            Decision::Pool { pool, rule } => self.route(pool, rule, None, false),
            Decision::Wait => self.route(routes.default_pool(), None, None, false),
        }
    }

    fn run(&mut self, routes: &Routes, buf: &[u8], end: Option<End>) -> Verdict {
        if !routes.needs_peek() {
            return self.route(routes.default_pool(), None, None, false);
        }
        let max = routes.settings().max;
        if !self.proxy_read {
            match parse_proxy(buf, max) {
                ProxyParse::NeedMore => {
                    return match end {
                        None => Verdict::NeedMore,
                        Some(End::Timeout) => Verdict::Reject(Reason::Timeout),
                        Some(End::Eof) => Verdict::Reject(Reason::BadProxy),
                    }
                }
                ProxyParse::Invalid => return Verdict::Reject(Reason::BadProxy),
                ProxyParse::Header { header, consumed } => {
                    self.proxy = Some(Box::new(header));
                    // At most `max`, which the config bounds far below u32::MAX.
                    self.skip = u32::try_from(consumed).unwrap_or(u32::MAX);
                    self.proxy_read = true;
                }
            }
        }
        let skip = self.skip as usize;
        if matches!(self.stage, Stage::Start) {
            let (wants_tls, wants_http) = routes.wants();
            if !wants_tls && !wants_http {
                return self.not_http(routes, &Seen::Other);
            }
            let window = buf.get(skip..buf.len().min(max)).unwrap_or(&[]);
            let head = match detect(window, wants_tls, wants_http) {
                Detect::Tls(hello) => return self.not_http(routes, &Seen::Tls(&hello)),
                Detect::Other => return self.not_http(routes, &Seen::Other),
                Detect::Http(head) => head,
                Detect::NeedMore if buf.len() >= max => return Verdict::Reject(Reason::PeekMax),
                Detect::NeedMore => {
                    return match end {
                        None => Verdict::NeedMore,
                        Some(End::Timeout) => Verdict::Reject(Reason::Timeout),
                        Some(End::Eof) if window.is_empty() => Verdict::Reject(Reason::Closed),
                        Some(End::Eof) => self.not_http(routes, &Seen::Other),
                    }
                }
            };
            self.stage = Stage::Http(Box::new(HttpPeek::new(head, routes)));
        }
        let Stage::Http(http) = &mut self.stage else {
            return Verdict::NeedMore; // unreachable: Start was handled and Done returned early
        };
        match http.run(routes, buf, skip, end.is_some()) {
            Some(o) => self.route(o.pool, o.rule, o.hash, o.capped),
            None => Verdict::NeedMore,
        }
    }
}

enum Detect {
    NeedMore,
    Tls(super::tls::ClientHello),
    Http(Box<HttpHead>),
    Other,
}

fn detect(window: &[u8], wants_tls: bool, wants_http: bool) -> Detect {
    let Some(&first) = window.first() else {
        return Detect::NeedMore;
    };
    if wants_tls && first == 0x16 {
        return match parse_client_hello(window, window.len()) {
            TlsParse::NeedMore => Detect::NeedMore,
            TlsParse::NotTls => Detect::Other,
            TlsParse::ClientHello(hello) => Detect::Tls(hello),
        };
    }
    if !wants_http {
        return Detect::Other;
    }
    match parse_head(window) {
        HttpParse::NeedMore => Detect::NeedMore,
        HttpParse::NotHttp => Detect::Other,
        HttpParse::Head(head) => Detect::Http(head),
    }
}

#[cfg(test)]
#[path = "peek_tests.rs"]
mod tests;
