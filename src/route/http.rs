//! The HTTP/1.x request head of a connection's first request, read with `httparse`: method,
//! path, host, headers, whether it asks for a WebSocket upgrade, how its body is framed and
//! where the body starts.
//!
//! It is what the `method`, `path`, `path_prefix`, `host`, `header` and `websocket` matchers
//! and `hash_key = "header:<name>"` look at. Parsing is cheap and stateless: the caller may
//! run it again on a longer buffer until it answers. It must never panic, never look past the
//! slice it is given, and never judge the request beyond what routing needs (the backend
//! still gets every byte as sent and answers a bad request itself).

/// Headers parsed on the stack; a head with more is parsed again with room for
/// [`MAX_HEADERS`].
const STACK_HEADERS: usize = 64;
/// A head with more headers than this is not routed on (it goes to the default pool).
pub const MAX_HEADERS: usize = 512;

/// What the first bytes of a connection say about HTTP/1.x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpParse {
    /// A plausible, incomplete request head.
    NeedMore,
    /// Not an HTTP/1.x request (or one with more than [`MAX_HEADERS`] headers).
    NotHttp,
    Head(Box<HttpHead>),
}

/// How the request body is delimited (RFC 9112 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: neither Content-Length nor Transfer-Encoding.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// Framing routing cannot follow: a Transfer-Encoding not ending in chunked, or
    /// Content-Length values that are not one number. The body is not scanned.
    Unknown,
}

/// A complete request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpHead {
    pub method: String,
    /// The path of the request target without query or fragment (from an absolute-form
    /// target, its path part; `*` and authority-form targets as they are).
    pub path: String,
    /// From an absolute-form target, else the Host header: lowercased, port and IPv6
    /// brackets removed. None without either.
    pub host: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// `Upgrade` has the token `websocket` and `Connection` the token `upgrade`.
    pub websocket: bool,
    /// `Expect: 100-continue`: the client may wait (curl: 1 s) before it sends the body.
    pub expect_continue: bool,
    pub body: BodyFraming,
    /// Bytes of the head, the final empty line included: the body starts here.
    pub head_len: usize,
    /// Every header in order, names lowercased, values with invalid UTF-8 replaced.
    headers: Vec<(String, String)>,
}

impl HttpHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any value of header `name` has `token` in its comma-separated list (any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }
}

/// Parses the request head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> HttpParse {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    match parse_with(buf, &mut stack) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut heap = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            parse_with(buf, &mut heap).unwrap_or(HttpParse::NotHttp)
        }
        other => other.unwrap_or(HttpParse::NotHttp),
    }
}

fn parse_with<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<HttpParse, httparse::Error> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf)? {
        httparse::Status::Partial => return Ok(HttpParse::NeedMore),
        httparse::Status::Complete(n) => n,
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Ok(HttpParse::NotHttp);
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value);
            (h.name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let mut head = HttpHead {
        method: method.to_string(),
        path: String::new(),
        host: None,
        minor_version,
        websocket: false,
        expect_continue: false,
        body: BodyFraming::None,
        head_len,
        headers,
    };
    let (authority, path) = split_target(target);
    head.path = path.to_string();
    head.host = authority
        .or_else(|| head.header("host"))
        .and_then(normalize_host);
    head.websocket =
        head.has_token("upgrade", "websocket") && head.has_token("connection", "upgrade");
    head.expect_continue = head.has_token("expect", "100-continue");
    head.body = framing(&head);
    Ok(HttpParse::Head(Box::new(head)))
}

/// (authority of an absolute-form target, path without query and fragment).
fn split_target(target: &str) -> (Option<&str>, &str) {
    let (authority, rest) = match target.find("://") {
        Some(i) if target[..i].bytes().all(|b| b.is_ascii_alphabetic()) => {
            let after = &target[i + 3..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        _ => (None, target),
    };
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    match (authority, path) {
        (Some(_), "") => (authority, "/"),
        _ => (authority, path),
    }
}

/// A host as matchers see it: userinfo, port and IPv6 brackets removed, ASCII-lowercased;
/// None when nothing is left.
fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw.rsplit_once('@').map_or(raw, |(_, host)| host);
    let host = if let Some(inner) = raw.strip_prefix('[') {
        inner.split_once(']').map_or(inner, |(h, _)| h)
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn framing(head: &HttpHead) -> BodyFraming {
    if head.header("transfer-encoding").is_some() {
        let last = head
            .header_all("transfer-encoding")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .last();
        return match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => BodyFraming::Chunked,
            _ => BodyFraming::Unknown,
        };
    }
    let mut length: Option<u64> = None;
    for value in head.header_all("content-length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        let n = match value.parse::<u64>() {
            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return BodyFraming::Unknown,
        };
        if length.is_some_and(|l| l != n) {
            return BodyFraming::Unknown;
        }
        length = Some(n);
    }
    length.map_or(BodyFraming::None, BodyFraming::Length)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
