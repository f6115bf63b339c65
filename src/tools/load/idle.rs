//! Idle mode: open `--connections` TCP connections at once and hold them, silent, until the
//! end of `--duration`, counting those established and those the peer closed early (as a
//! balancer with a short idle timeout would). Must never send anything on a held connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::error::{ErrorKind, RequestError};
use super::options::Limit;
use super::runner::{stopped, Ctx};
use super::stats::Sample;
use super::wire::connect_tcp;

pub fn spawn(set: &mut JoinSet<()>, ctx: &Arc<Ctx>, stop: &watch::Receiver<bool>) {
    let hold = match ctx.opts.limit {
        Limit::Duration(d) => d,
        Limit::Requests(_) => Duration::ZERO, // rejected by LoadOptions::validate
    };
    // Validation bounds the duration; should the clock still overflow, hold for no time.
    let deadline = ctx.started.checked_add(hold).unwrap_or(ctx.started);
    for _ in 0..ctx.opts.connections {
        set.spawn(hold_one(Arc::clone(ctx), deadline, stop.clone()));
    }
}

async fn hold_one(ctx: Arc<Ctx>, deadline: Instant, mut stop: watch::Receiver<bool>) {
    let stats = &ctx.stats;
    let timeout = ctx.opts.timeout;
    let began = Instant::now();
    let connected = tokio::select! {
        r = tokio::time::timeout(timeout, connect_tcp(ctx.addr)) => r,
        () = stopped(&mut stop) => return,
    };
    let mut stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return stats.record_error(&err, Sample::default()),
        Err(_) => {
            let err = RequestError::new(
                ErrorKind::Connect,
                format!("connect timed out after {timeout:?}"),
            );
            return stats.record_error(&err, Sample::default());
        }
    };
    let established = Instant::now();
    stats.record_connect(established - began);
    let mut sample = Sample::default();
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => break,
            () = stopped(&mut stop) => break,
            read = stream.read(&mut buf) => {
                let why = match read {
                    Ok(0) => "peer closed".to_string(),
                    Ok(n) => {
                        // A banner or keep-alive from the peer: the connection is still held.
                        sample.mark_first_byte();
                        sample.bytes_in += n as u64;
                        continue;
                    }
                    Err(e) => e.to_string(),
                };
                let held = established.elapsed();
                let detail = format!("idle connection lost after {:.1}s: {why}", held.as_secs_f64());
                return stats.record_closed_early(detail, sample);
            }
        }
    }
    // Held to the end: the "request" of an idle connection is how long it was held.
    stats.record_ok(established, Instant::now(), sample);
}
