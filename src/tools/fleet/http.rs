//! HTTP/1.1 request heads: parsing with `httparse` into the few facts the mock routes on, and
//! building response heads.
//!
//! Must never panic or allocate without bound on garbage: heads are capped in size and header
//! count, bodies in length, and anything it cannot frame safely is an error that closes.

use std::time::Duration;

/// Largest request head accepted; bigger is answered 431 and closed. Real clients send well
/// under 2 KiB; 16 KiB matches common proxies' defaults.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Largest request body accepted (413 above): prompts of a mock never need more.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Most headers in one request (431 above); httparse needs a fixed array.
const MAX_HEADERS: usize = 64;

/// Why a request cannot be served; each maps to a status and always ends the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("malformed request: {reason}")]
    Malformed { reason: String },
    #[error("request head over {limit} bytes or {MAX_HEADERS} headers")]
    HeadTooLarge { limit: usize },
    #[error("request body of {len} bytes over {limit}")]
    BodyTooLarge { len: u64, limit: usize },
    #[error("unsupported transfer-encoding {value:?}")]
    TransferEncoding { value: String },
    #[error("client i/o: {source}")]
    Io {
        #[from]
        source: std::io::Error,
    },
    #[error("no complete request within {timeout:?}")]
    Idle { timeout: Duration },
}

impl HttpError {
    /// The response owed to the client, if it is still there to read one.
    pub(crate) fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            HttpError::Malformed { .. } => Some((400, "Bad Request")),
            HttpError::HeadTooLarge { .. } => Some((431, "Request Header Fields Too Large")),
            HttpError::BodyTooLarge { .. } => Some((413, "Content Too Large")),
            HttpError::TransferEncoding { .. } => Some((501, "Not Implemented")),
            HttpError::Io { .. } | HttpError::Idle { .. } => None,
        }
    }

    fn malformed(reason: impl Into<String>) -> HttpError {
        HttpError::Malformed {
            reason: reason.into(),
        }
    }
}

/// A parsed request head (the body is read separately, `content_length` bytes).
#[derive(Debug, Default)]
pub(crate) struct Head {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub keep_alive: bool,
    /// An HTTP/1.0 request: its client cannot decode a chunked response.
    pub http10: bool,
    pub content_length: u64,
    pub expect_continue: bool,
    /// `Upgrade: websocket` together with a `Connection: upgrade` token.
    pub websocket: bool,
    pub ws_key: Option<String>,
    pub ws_version: Option<String>,
}

/// Parses a head at the start of `buf`: `Ok(None)` if more bytes are needed, else the head
/// and its length in bytes.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(HttpError::HeadTooLarge {
                limit: MAX_HEAD_BYTES,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::HeadTooLarge {
                limit: MAX_HEAD_BYTES,
            })
        }
        Err(e) => return Err(HttpError::malformed(e.to_string())),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge {
            limit: MAX_HEAD_BYTES,
        });
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::malformed("incomplete request line"));
    };
    let mut head = Head {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or(target).to_string(),
        keep_alive: version >= 1,
        http10: version == 0,
        ..Head::default()
    };
    let mut content_length: Option<u64> = None;
    let (mut conn_upgrade, mut upgrade_ws) = (false, false);
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::malformed(format!("non-UTF-8 value of {}", h.name)))?
            .trim();
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| HttpError::malformed("invalid content-length"))?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpError::malformed("conflicting content-length"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                return Err(HttpError::TransferEncoding {
                    value: value.to_string(),
                })
            }
            "connection" => {
                for token in value.split(',').map(|t| t.trim().to_ascii_lowercase()) {
                    match token.as_str() {
                        "close" => head.keep_alive = false,
                        "keep-alive" => head.keep_alive = true,
                        "upgrade" => conn_upgrade = true,
                        _ => {}
                    }
                }
            }
            "upgrade" => upgrade_ws = value.eq_ignore_ascii_case("websocket"),
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "sec-websocket-key" => head.ws_key = Some(value.to_string()),
            "sec-websocket-version" => head.ws_version = Some(value.to_string()),
            _ => {}
        }
    }
    head.content_length = content_length.unwrap_or(0);
    if head.content_length > MAX_BODY_BYTES as u64 {
        return Err(HttpError::BodyTooLarge {
            len: head.content_length,
            limit: MAX_BODY_BYTES,
        });
    }
    head.websocket = conn_upgrade && upgrade_ws;
    Ok(Some((head, len)))
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    /// Ends when the connection closes: streaming to HTTP/1.0 clients, which lack chunking.
    Close,
}

/// A response head carrying `x-backend`.
pub(crate) fn response_head(
    status: (u16, &str),
    backend: &str,
    content_type: &str,
    framing: Framing,
    keep_alive: bool,
) -> String {
    let (framing, keep_alive) = match framing {
        Framing::Length(n) => (format!("Content-Length: {n}\r\n"), keep_alive),
        Framing::Chunked => (
            "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n".to_string(),
            keep_alive,
        ),
        Framing::Close => ("Cache-Control: no-cache\r\n".to_string(), false),
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nx-backend: {backend}\r\n\
         {framing}Connection: {connection}\r\n\r\n",
        status.0, status.1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_then_complete_with_query_and_upgrade() {
        let full = b"GET /v1/stream?x=1 HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\
                     Upgrade: WebSocket\r\nSec-WebSocket-Key: abc\r\n\r\nrest";
        assert!(parse_head(&full[..20]).unwrap().is_none());
        let (head, len) = parse_head(full).unwrap().unwrap();
        assert_eq!(&full[len..], b"rest");
        assert_eq!(head.path, "/v1/stream");
        assert!(head.websocket && head.keep_alive);
        assert_eq!(head.ws_key.as_deref(), Some("abc"));
    }

    #[test]
    fn rejects_bad_framing() {
        let status = |raw: &[u8]| parse_head(raw).unwrap_err().status().unwrap().0;
        assert_eq!(status(b"\x00\x01garbage\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        let two = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(status(two), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            413
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(status(&big), 431);
        let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
    }

    #[test]
    fn http10_closes_unless_asked() {
        let (head, _) = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive && head.http10);
        let (head, _) = parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
    }
}
