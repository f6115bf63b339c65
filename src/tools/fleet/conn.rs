//! One client connection of the inference server: a read buffer that survives between
//! requests (pipelined bytes are kept), request reading, and the ways to answer and close.
//!
//! Must never read without bound (the buffer stops growing at one head plus one body) and never
//! drop a connection with unread input right after a final response: the kernel would answer
//! with a reset that can destroy the response before the client reads it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::{
    parse_head, response_head, Framing, Head, HttpError, MAX_BODY_BYTES, MAX_HEAD_BYTES,
};

/// How long a closing connection keeps draining input after its final response, so the
/// client can read that response before unread bytes turn the close into a reset.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Bytes read per read call.
const READ_CHUNK: usize = 16 * 1024;

/// A request: its head and its complete body.
pub(crate) struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

pub(crate) struct Conn {
    pub stream: TcpStream,
    /// Bytes read but not consumed yet (the start of the next request, or WebSocket frames).
    pub buf: Vec<u8>,
    idle_timeout: Option<Duration>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, idle_timeout: Option<Duration>) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            idle_timeout,
        }
    }

    /// Reads more bytes into the buffer before `deadline`; `Ok(0)` is the client's EOF.
    async fn fill(&mut self, deadline: Option<Instant>) -> Result<usize, HttpError> {
        self.buf.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.buf);
        match (deadline, self.idle_timeout) {
            (Some(deadline), Some(timeout)) => tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| HttpError::Idle { timeout })?
                .map_err(HttpError::from),
            _ => read.await.map_err(HttpError::from),
        }
    }

    /// The next request; `Ok(None)` when the client closed cleanly between requests.
    pub(crate) async fn read_request(&mut self) -> Result<Option<Request>, HttpError> {
        let deadline = self.idle_timeout.map(|t| Instant::now() + t);
        let (head, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.fill(deadline).await? == 0 {
                if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    return Ok(None);
                }
                return Err(HttpError::Malformed {
                    reason: "connection closed inside a request head".to_string(),
                });
            }
        };
        // parse_head capped content_length at MAX_BODY_BYTES, so this fits a usize.
        let end = head_len + usize::try_from(head.content_length).unwrap_or(MAX_BODY_BYTES);
        if self.buf.len() < end && head.expect_continue {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        while self.buf.len() < end {
            if self.fill(deadline).await? == 0 {
                return Err(HttpError::Malformed {
                    reason: "connection closed inside a request body".to_string(),
                });
            }
        }
        let body = self.buf[head_len..end].to_vec();
        self.buf.drain(..end);
        // One large body must not pin a megabyte to a long-lived keep-alive connection.
        if self.buf.capacity() > 4 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
            self.buf.shrink_to(READ_CHUNK);
        }
        Ok(Some(Request { head, body }))
    }

    /// Completes when the client hangs up (EOF or error) while we are not reading requests,
    /// e.g. while its request is queued. Bytes it pipelines meanwhile are kept for later;
    /// once the buffer holds a maximal request it stops reading and never completes.
    pub(crate) async fn client_gone(&mut self) {
        while self.buf.len() < MAX_HEAD_BYTES + MAX_BODY_BYTES {
            match self.fill(None).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        std::future::pending::<()>().await
    }

    /// Sends a complete response with a `Content-Length` body.
    pub(crate) async fn respond(
        &mut self,
        backend: &str,
        status: (u16, &str),
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
    ) -> std::io::Result<()> {
        let framing = Framing::Length(body.len());
        let head = response_head(status, backend, content_type, framing, keep_alive);
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        self.stream.write_all(&out).await
    }

    /// Answers a request that cannot be served and closes the connection politely.
    pub(crate) async fn reject(mut self, backend: &str, status: (u16, &str), detail: &str) {
        let body = format!("{detail}\n");
        let sent = self
            .respond(backend, status, "text/plain", body.as_bytes(), false)
            .await;
        if sent.is_ok() {
            self.close().await;
        }
    }

    /// Shuts down our write side, then drains input for up to [`LINGER`] before dropping.
    pub(crate) async fn close(mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
}
