//! The `http` check: `GET path HTTP/1.1` with `Connection: close`, the status line and headers
//! parsed with `httparse`, the status matched against `expect_status` and, when set, the body
//! (by `Content-Length`, chunked, or until close) searched for `expect_body`.
//!
//! Reads at most [`MAX_HEAD`] bytes of head and [`MAX_BODY`] of body: a backend that sends more
//! is judged on what fits. [`get`] is the same exchange for the engine-metrics scraper, which
//! needs the whole body under its own cap. Must never panic on a malformed answer.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProbeError;

/// A health answer's head is a few hundred bytes; 16 KiB is what most servers allow.
const MAX_HEAD: usize = 16 * 1024;
/// `/health` bodies are tiny; a JSON status page still fits in 64 KiB.
const MAX_BODY: usize = 64 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;

/// How the body of an answer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

pub(super) async fn check(
    stream: &mut TcpStream,
    addr: SocketAddr,
    path: &str,
    expect_status: &[u16],
    expect_body: Option<&str>,
) -> Result<(), ProbeError> {
    let (status, head_len, framing, mut buf) = request(stream, addr, path, "health").await?;
    if !expect_status.contains(&status) {
        return Err(ProbeError::Status {
            status,
            expected: expect_status.to_vec(),
        });
    }
    let Some(needle) = expect_body else {
        return Ok(());
    };
    let body = read_body(stream, &mut buf, head_len, framing, MAX_BODY).await?;
    if contains(&body, needle.as_bytes()) {
        Ok(())
    } else {
        Err(ProbeError::Body(needle.to_string()))
    }
}

/// `GET path` and its status and whole body, for the engine-metrics scraper. A body longer
/// than `max_body` is an error, not cut: half a scrape would read as lower load.
pub(crate) async fn get(
    stream: &mut TcpStream,
    addr: SocketAddr,
    path: &str,
    max_body: usize,
) -> Result<(u16, Vec<u8>), ProbeError> {
    let (status, head_len, framing, mut buf) = request(stream, addr, path, "metrics").await?;
    if let Framing::Length(n) = framing {
        if n > max_body {
            return Err(too_long(max_body));
        }
    }
    // One byte past the cap tells a body of exactly `max_body` from a longer one.
    let body = read_body(stream, &mut buf, head_len, framing, max_body + 1).await?;
    if body.len() > max_body {
        return Err(too_long(max_body));
    }
    if let Framing::Length(n) = framing {
        if body.len() < n {
            return Err(ProbeError::Closed);
        }
    }
    Ok((status, body))
}

fn too_long(max: usize) -> ProbeError {
    ProbeError::Protocol(format!("body longer than {max} bytes"))
}

/// Sends the request and reads up to the end of the head: (status, head length, framing,
/// what was read so far).
async fn request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    path: &str,
    agent: &str,
) -> Result<(u16, usize, Framing, Vec<u8>), ProbeError> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ringlb-{agent}\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if read_more(stream, &mut buf, MAX_HEAD).await? == 0 {
            return Err(if buf.len() >= MAX_HEAD {
                ProbeError::Protocol(format!("response head longer than {MAX_HEAD} bytes"))
            } else {
                ProbeError::Closed
            });
        }
        if let Some((status, head_len, framing)) = parse_head(&buf)? {
            return Ok((status, head_len, framing, buf));
        }
    }
}

/// The body after a head of `head_len` bytes in `buf`, reading at most `max` body bytes
/// (what came is kept if the peer closes early).
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_len: usize,
    framing: Framing,
    max: usize,
) -> Result<Vec<u8>, ProbeError> {
    let limit = match framing {
        Framing::Length(n) => head_len.saturating_add(n.min(max)),
        // A chunked body carries its sizes and a tail: allow for them past `max` of data.
        Framing::Chunked => head_len.saturating_add(max.saturating_mul(2).max(max + 64)),
        Framing::UntilClose => head_len.saturating_add(max),
    };
    while buf.len() < limit && read_more(stream, buf, limit).await? > 0 {
        if framing == Framing::Chunked && buf[head_len..].ends_with(b"0\r\n\r\n") {
            break;
        }
    }
    let raw = &buf[head_len.min(buf.len())..];
    Ok(match framing {
        Framing::Chunked => dechunk(raw),
        _ => raw.to_vec(),
    })
}

/// Reads once into `buf`, never past `limit` bytes in all; 0 at EOF or at the limit.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, ProbeError> {
    let room = limit.saturating_sub(buf.len());
    if room == 0 {
        return Ok(0);
    }
    let mut chunk = vec![0u8; room.min(8192)];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The status, head length and body framing once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, Framing)>, ProbeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ProbeError::Protocol(format!("not an HTTP response: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && contains(&h.value.to_ascii_lowercase(), b"chunked")
        {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| ProbeError::Protocol("bad Content-Length".to_string()))?;
            framing = Framing::Length(n);
        }
    }
    Ok(Some((status, head_len, framing)))
}

/// The data of a chunked body, as far as it is complete (a truncated one keeps what came).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&raw[..eol]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        raw = raw.get(take + 2..).unwrap_or(&[]);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_framing() {
        let head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7\r\n\r\nloading";
        assert_eq!(
            parse_head(head).unwrap(),
            Some((503, head.len() - 7, Framing::Length(7)))
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            parse_head(chunked).unwrap().map(|h| h.2),
            Some(Framing::Chunked)
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn dechunks_whole_and_truncated_bodies() {
        assert_eq!(
            dechunk(b"4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"),
            b"wikipedia"
        );
        assert_eq!(dechunk(b"4\r\nwi"), b"wi");
        assert_eq!(dechunk(b"zz\r\n"), b"");
        assert!(contains(b"{\"status\":\"ok\"}", b"ok"));
        assert!(!contains(b"loading", b"ok"));
    }

    /// `get` against a one-shot server on 127.0.0.1:0 that sends `answer` and closes.
    fn get_from(answer: &'static [u8], max_body: usize) -> Result<(u16, Vec<u8>), ProbeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await?;
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await?;
                s.write_all(answer).await?;
                s.shutdown().await
            });
            let mut stream = TcpStream::connect(addr).await?;
            let got = get(&mut stream, addr, "/metrics", max_body).await;
            let _ = server.await;
            got
        })
    }

    #[test]
    fn get_reads_bodies_by_length_chunks_or_close() {
        let by_length = get_from(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 64);
        assert_eq!(by_length.unwrap(), (200, b"hello".to_vec()));
        let chunked = get_from(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            64,
        );
        assert_eq!(chunked.unwrap(), (200, b"abcde".to_vec()));
        let until_close = get_from(b"HTTP/1.0 503 Unavailable\r\n\r\nbusy", 64);
        assert_eq!(until_close.unwrap(), (503, b"busy".to_vec()));
    }

    #[test]
    fn get_refuses_a_body_over_the_cap_or_cut_short() {
        let declared = get_from(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nx", 10);
        assert!(matches!(declared, Err(ProbeError::Protocol(m)) if m.contains("longer than 10")));
        let sent = get_from(b"HTTP/1.1 200 OK\r\n\r\n0123456789ABC", 10);
        assert!(matches!(sent, Err(ProbeError::Protocol(_))), "{sent:?}");
        let exact = get_from(b"HTTP/1.1 200 OK\r\n\r\n0123456789", 10);
        assert_eq!(exact.unwrap().1.len(), 10, "exactly the cap is fine");
        let short = get_from(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 64);
        assert!(matches!(short, Err(ProbeError::Closed)), "{short:?}");
    }
}
