//! The inference server's connection loop: read a request, route it, answer, repeat while the
//! connection is kept alive.
//!
//! Must never answer a request it could not frame (those get 4xx/5xx and the connection
//! closes), and never keep a connection after an I/O error.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::conn::Conn;
use super::server::Shared;
use super::{completions, health, metrics, stall, websocket};

/// How a handled request leaves the connection.
pub(crate) enum Outcome {
    /// Ready for the next request.
    KeepAlive,
    /// The response said `Connection: close`: close politely.
    Close,
    /// Answer this status and detail, then close.
    Reject((u16, &'static str), String),
    /// The client is gone or broke the protocol mid-response: just drop it.
    Drop,
}

pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut conn = Conn::new(stream, shared.idle_timeout);
    loop {
        let req = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                debug!(backend = %shared.name, error = %e, "bad request");
                if let Some(status) = e.status() {
                    conn.reject(&shared.name, status, &e.to_string()).await;
                }
                return;
            }
        };
        let received = Instant::now();
        let head = &req.head;
        let outcome = match head.path.as_str() {
            "/v1/completions" => completions::handle(&mut conn, &req, received, &shared).await,
            "/v1/stream" if head.method != "GET" => method_not_allowed(),
            "/v1/stream" if !head.websocket => Outcome::Reject(
                (426, "Upgrade Required"),
                "this endpoint speaks WebSocket only".to_string(),
            ),
            "/v1/stream" => {
                websocket::serve(conn, &req.head, shared.clone()).await;
                return;
            }
            "/health" | "/metrics" if head.method != "GET" => method_not_allowed(),
            "/health" => health::answer(&mut conn, &shared, head.keep_alive).await,
            p if p.starts_with("/admin/health/") && head.method == "POST" => {
                health::admin(&mut conn, &shared, p, head.keep_alive).await
            }
            "/admin/stall" | "/admin/unstall" if head.method != "POST" => method_not_allowed(),
            "/admin/stall" => stall::admin(&mut conn, &shared, true, head.keep_alive).await,
            "/admin/unstall" => stall::admin(&mut conn, &shared, false, head.keep_alive).await,
            "/metrics" => {
                let reading = metrics::Reading {
                    model: &shared.name,
                    queue_times: Some(&shared.stats.queue_times),
                    stats: shared.stats.snapshot(),
                    kv_usage: shared.gpu.kv_usage(),
                };
                let text = metrics::render(shared.metrics_flavor, &reading);
                let ctype = metrics::CONTENT_TYPE;
                simple(&mut conn, &shared, ctype, text.as_bytes(), head.keep_alive).await
            }
            _ => Outcome::Reject((404, "Not Found"), format!("no route for {}", head.path)),
        };
        match outcome {
            Outcome::KeepAlive => {}
            Outcome::Close => return conn.close().await,
            Outcome::Reject(status, detail) => {
                return conn.reject(&shared.name, status, &detail).await
            }
            Outcome::Drop => return,
        }
    }
}

fn method_not_allowed() -> Outcome {
    Outcome::Reject(
        (405, "Method Not Allowed"),
        "method not allowed".to_string(),
    )
}

async fn simple(
    conn: &mut Conn,
    shared: &Shared,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Outcome {
    match conn
        .respond(&shared.name, (200, "OK"), content_type, body, keep_alive)
        .await
    {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Drop,
    }
}
