//! Raw TCP modes for byte-exact tests and throughput benchmarks: echo, source, respond, sink.
//!
//! Bytes moved are counted in the backend's stats as they go. Must never lose or reorder a
//! byte, never close with unread input right after its final write (that resets the
//! connection and can destroy the data in flight), and never buffer more than one chunk.

use std::sync::atomic::AtomicU64;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::conn::LINGER;
use super::pattern::pattern_fill;
use super::stats::BackendStats;
use super::Mode;

/// Size of the copy and pattern buffers: large enough for full-speed loopback transfers.
const CHUNK: usize = 64 * 1024;

/// Longest request line of the `respond` mode; a longer line closes the connection.
const MAX_LINE: usize = 4096;

/// Serves one connection in a raw `mode` (never `Mode::Inference`).
pub(crate) async fn serve(stream: TcpStream, mode: Mode, stats: &BackendStats) {
    let result = match mode {
        Mode::Echo => echo(stream, stats).await,
        Mode::Source { bytes } => source(stream, bytes, stats).await,
        Mode::Respond { bytes } => respond(stream, bytes, stats).await,
        Mode::Sink => sink(stream, stats).await,
        Mode::Inference => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(backend = stats.name(), error = %e, "raw connection ended");
    }
}

fn count(counter: &AtomicU64, n: usize) {
    BackendStats::add(counter, n as u64);
}

async fn echo(mut stream: TcpStream, stats: &BackendStats) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // The client's half-close: everything read was written back, so end our side.
            return stream.shutdown().await;
        }
        count(&stats.bytes_in, n);
        stream.write_all(&buf[..n]).await?;
        count(&stats.bytes_out, n);
    }
}

/// Writes `bytes` pattern bytes starting at pattern offset 0.
async fn write_pattern(
    stream: &mut TcpStream,
    bytes: u64,
    stats: &BackendStats,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        pattern_fill(sent, &mut buf[..n]);
        stream.write_all(&buf[..n]).await?;
        count(&stats.bytes_out, n);
        sent += n as u64;
    }
    Ok(())
}

/// Shuts our side, then discards input until EOF or [`LINGER`] passes.
async fn close_after_drain(mut stream: TcpStream, stats: &BackendStats) -> std::io::Result<()> {
    stream.shutdown().await?;
    let deadline = Instant::now() + LINGER;
    let mut buf = vec![0u8; CHUNK];
    while let Ok(read) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        match read? {
            0 => break,
            n => count(&stats.bytes_in, n),
        }
    }
    Ok(())
}

async fn source(mut stream: TcpStream, bytes: u64, stats: &BackendStats) -> std::io::Result<()> {
    write_pattern(&mut stream, bytes, stats).await?;
    close_after_drain(stream, stats).await
}

async fn respond(mut stream: TcpStream, bytes: u64, stats: &BackendStats) -> std::io::Result<()> {
    let mut line_len = 0usize;
    let mut buf = vec![0u8; MAX_LINE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        count(&stats.bytes_in, n);
        for &b in &buf[..n] {
            if b == b'\n' {
                line_len = 0;
                write_pattern(&mut stream, bytes, stats).await?;
            } else if line_len == MAX_LINE {
                return close_after_drain(stream, stats).await;
            } else {
                line_len += 1;
            }
        }
    }
}

async fn sink(mut stream: TcpStream, stats: &BackendStats) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        count(&stats.bytes_in, n);
        total += n as u64;
    }
    let reply = format!("{total}\n");
    stream.write_all(reply.as_bytes()).await?;
    count(&stats.bytes_out, reply.len());
    stream.shutdown().await
}
