//! A buffered HTTP/1.1 client connection: send a request, read the response head (httparse)
//! and stream the body (Content-Length, chunked or close-delimited) to a callback as it
//! arrives. Must never grow without bound on a bad peer: heads and chunk lines are capped and
//! body bytes are handed on as they come, not collected.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked::ChunkedDecoder;
use super::error::{ErrorKind, RequestError};
use super::stats::Sample;

/// Largest response head accepted; real servers send well under 8 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers parsed per response; more than this is garbage, not a server.
pub const MAX_HEADERS: usize = 64;
/// Bytes asked of the kernel per read: a few SSE events or a whole small response.
pub const READ_CHUNK: usize = 16 * 1024;

/// Connects with TCP_NODELAY on: the requests are small and latency is what is measured.
pub async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, RequestError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| RequestError::new(ErrorKind::Connect, format!("connect to {addr}: {e}")))?;
    stream
        .set_nodelay(true)
        .map_err(|e| RequestError::new(ErrorKind::Connect, format!("set TCP_NODELAY: {e}")))?;
    Ok(stream)
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    pub keep_alive: bool,
    pub content_type: Option<String>,
    /// Value of the backend header, when one was asked for and sent.
    pub backend: Option<String>,
    pub head_bytes: usize,
}

/// How a body read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The whole body was read; the connection is at the next response.
    Complete,
    /// The callback asked to stop; the connection is mid-body and cannot be reused.
    Stopped,
}

pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl HttpConn {
    pub fn new(stream: TcpStream) -> Self {
        HttpConn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub async fn send(&mut self, request: &[u8]) -> Result<(), RequestError> {
        if !self.buffered().is_empty() {
            return Err(RequestError::protocol(format!(
                "{} unexpected bytes from the server before the request",
                self.buffered().len()
            )));
        }
        self.stream
            .write_all(request)
            .await
            .map_err(|e| RequestError::io("send request", &e))
    }

    /// Reads more bytes after those buffered; Ok(0) is end of stream.
    async fn fill(&mut self) -> Result<usize, RequestError> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= READ_CHUNK {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| RequestError::io("read response", &e))
    }

    /// Reads the response head; `first_byte` is set when the first byte of it arrives.
    /// Sends `request` and reads a 2xx response head, counting bytes and the first byte in
    /// `sample`; any other status is a protocol error.
    pub async fn exchange_head(
        &mut self,
        request: &[u8],
        backend_header: Option<&str>,
        sample: &mut Sample,
    ) -> Result<ResponseHead, RequestError> {
        self.send(request).await?;
        sample.bytes_out += request.len() as u64;
        let head = self
            .read_head(backend_header, &mut sample.first_byte)
            .await?;
        sample.bytes_in += head.head_bytes as u64;
        if !(200..300).contains(&head.status) {
            return Err(RequestError::protocol(format!(
                "HTTP status {}",
                head.status
            )));
        }
        Ok(head)
    }

    pub async fn read_head(
        &mut self,
        backend_header: Option<&str>,
        first_byte: &mut Option<Instant>,
    ) -> Result<ResponseHead, RequestError> {
        loop {
            if !self.buffered().is_empty() {
                first_byte.get_or_insert_with(Instant::now);
                if let Some(head) = parse_head(self.buffered(), backend_header)? {
                    self.start += head.head_bytes;
                    if (100..200).contains(&head.status) {
                        continue; // 100 Continue and friends precede the real response
                    }
                    return Ok(head);
                }
                if self.buffered().len() > MAX_HEAD_BYTES {
                    return Err(RequestError::protocol(format!(
                        "response head longer than {MAX_HEAD_BYTES} bytes"
                    )));
                }
            }
            if self.fill().await? == 0 {
                let got = self.buffered().len();
                return Err(RequestError::closed(if got == 0 {
                    "connection closed before the response".to_string()
                } else {
                    format!("connection closed after {got} bytes of the response head")
                }));
            }
        }
    }

    /// Streams the body to `on_data`, which returns whether it wants more.
    pub async fn read_body<F>(
        &mut self,
        framing: Framing,
        mut on_data: F,
    ) -> Result<BodyEnd, RequestError>
    where
        F: FnMut(&[u8]) -> Result<bool, RequestError>,
    {
        let mut remaining = match framing {
            Framing::Empty | Framing::Length(0) => return Ok(BodyEnd::Complete),
            Framing::Length(n) => n,
            Framing::Chunked | Framing::Close => 0,
        };
        let mut chunked = ChunkedDecoder::new();
        let mut body_bytes = 0u64;
        loop {
            let avail = &self.buf[self.start..];
            let (consumed, data, done) = match framing {
                Framing::Chunked => {
                    let step = chunked.step(avail)?;
                    (step.consumed, step.data.map(|r| &avail[r]), step.done)
                }
                Framing::Length(_) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(avail.len());
                    remaining -= n as u64;
                    (n, (n > 0).then(|| &avail[..n]), remaining == 0)
                }
                Framing::Close | Framing::Empty => {
                    let n = avail.len();
                    (n, (n > 0).then_some(avail), false)
                }
            };
            let mut wants_more = true;
            if let Some(data) = data {
                body_bytes += data.len() as u64;
                wants_more = on_data(data)?;
            }
            self.start += consumed;
            if done {
                return Ok(BodyEnd::Complete);
            }
            if !wants_more {
                return Ok(BodyEnd::Stopped);
            }
            if consumed == 0 && self.fill().await? == 0 {
                if framing == Framing::Close {
                    return Ok(BodyEnd::Complete);
                }
                return Err(RequestError::closed(format!(
                    "connection closed after {body_bytes} body bytes"
                )));
            }
        }
    }
}

/// Parses a complete head at the start of `buf`, or returns None if it has not all arrived.
fn parse_head(
    buf: &[u8],
    backend_header: Option<&str>,
) -> Result<Option<ResponseHead>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_bytes = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(RequestError::protocol(format!("bad response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let (mut chunked, mut has_te, mut length) = (false, false, None::<u64>);
    let (mut content_type, mut backend) = (None, None);
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            chunked = last.eq_ignore_ascii_case("chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for part in value.split(',').map(str::trim) {
                let n: u64 = part
                    .parse()
                    .map_err(|_| RequestError::protocol(format!("bad Content-Length {value:?}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(RequestError::protocol("conflicting Content-Length headers"));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_ascii_lowercase());
        }
        if backend_header.is_some_and(|name| h.name.eq_ignore_ascii_case(name)) {
            backend = Some(value.to_string());
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if has_te {
        Framing::Close // a response with a non-chunked final coding ends at close (RFC 9112 6.3)
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    Ok(Some(ResponseHead {
        status,
        framing,
        keep_alive,
        content_type,
        backend,
        head_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> ResponseHead {
        parse_head(raw.as_bytes(), Some("x-backend"))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn framing_and_keep_alive() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: gpu-1\r\n\r\nhello");
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        assert_eq!(h.backend.as_deref(), Some("gpu-1"));
        assert_eq!(h.head_bytes, 56, "everything but the 5 body bytes");
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        assert_eq!(h.content_type.as_deref(), Some("text/event-stream"));
        let h = head("HTTP/1.0 204 No Content\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, false));
        let h = head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.keep_alive);
    }

    #[test]
    fn partial_and_bad_heads() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", None)
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", None).is_err());
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            None
        )
        .is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", None).is_err());
    }
}
