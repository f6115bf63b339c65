//! Content routing at L4: from the first bytes a client sends (a PROXY header, a TLS
//! ClientHello, an HTTP/1.x request head and, if needed, the top-level members of its JSON
//! body), the pool a connection goes to and the session hash its pool may use, before a
//! single byte is relayed; the bytes themselves are then relayed unchanged.
//!
//! Pure and engine-independent: the parsers (`tls`, `http`, `chunked`, `json`, `proxy`), the
//! compiled rules of a listener ([`Routes`], built by the config at validation time) and the
//! per-connection driver ([`Peek`]) the engine feeds with the bytes it has received. Nothing
//! here does I/O, reads a clock, or keeps more per connection than its caps allow; nothing
//! here may panic on any input.
//!
//! The first request of a connection decides; later requests on a keep-alive connection
//! follow it to the same backend (what every L4 balancer does).

mod chunked;
mod glob;
mod hash;
mod http;
mod json;
mod json_string;
mod matcher;
mod peek;
mod peek_body;
mod proxy;
mod proxy_v2;
mod rules;
mod tls;

pub use chunked::{Chunked, ChunkedStatus};
pub use glob::{Glob, GlobError};
pub use hash::session_hash;
pub use http::{parse_head, BodyFraming, HttpHead, HttpParse, MAX_HEADERS};
pub use json::{JsonScan, Slot, VALUE_MAX};
pub use matcher::{Matcher, MatcherKind, Seen, Tri};
pub use peek::{Peek, Reason, Verdict};
pub use proxy::{
    encode_v1, encode_v2, parse_proxy, EncodedProxy, ProxyHeader, ProxyParse, ProxyVersion, V1_MAX,
    V2_SIG,
};
pub use rules::{
    Decision, PeekSettings, Routes, Rule, SessionKey, DEFAULT_PEEK_BODY_MAX, DEFAULT_PEEK_MAX,
    DEFAULT_PEEK_TIMEOUT,
};
pub use tls::{parse_client_hello, ClientHello, TlsParse};
