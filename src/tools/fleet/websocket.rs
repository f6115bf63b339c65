//! `GET /v1/stream`: the WebSocket flavour of generation. The upgrade is answered here on top
//! of our own HTTP parse (101 with `Sec-WebSocket-Accept` and `x-backend`), then
//! tokio-tungstenite takes over the socket, replaying any bytes already read.
//!
//! Each text message `{"prompt": .., "max_tokens": N}` gets N text messages (the token text,
//! e.g. `tok3 `) and then `[DONE]`; the socket stays open for the next request. Must never
//! accept a handshake it cannot complete per RFC 6455, nor buffer unbounded messages.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::Message;

use super::conn::Conn;
use super::generate::{token_text, GenRequest, Need};
use super::http::Head;
use super::queue_time::Origin;
use super::server::Shared;

/// Largest WebSocket message accepted: a request is a small JSON object.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The `[DONE]` message that ends one generation.
const DONE: &str = "[DONE]";

/// Completes the upgrade of `conn` (whose request head is `head`) and serves messages.
pub(crate) async fn serve(mut conn: Conn, head: &Head, shared: Arc<Shared>) {
    let key = match (&head.ws_key, head.ws_version.as_deref()) {
        (Some(key), Some("13")) => key,
        _ => {
            let detail = "need Sec-WebSocket-Key and Sec-WebSocket-Version: 13";
            return conn
                .reject(&shared.name, (400, "Bad Request"), detail)
                .await;
        }
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nx-backend: {}\r\n\r\n",
        derive_accept_key(key.as_bytes()),
        shared.name
    );
    if conn.stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let leftover = std::mem::take(&mut conn.buf);
    let mut ws =
        WebSocketStream::from_partially_read(conn.stream, leftover, Role::Server, Some(config))
            .await;
    // Reading until the stream ends also flushes tungstenite's automatic pong and close replies.
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                close(&mut ws, CloseCode::Unsupported, "send JSON text messages").await;
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                debug!(backend = %shared.name, error = %e, "websocket ended");
                return;
            }
        };
        let received = Instant::now();
        let need = match GenRequest::parse(text.as_bytes()) {
            Ok(req) => shared.gpu.need(&req).map_err(|d| (CloseCode::Policy, d)),
            Err(detail) => Err((CloseCode::Invalid, detail)),
        };
        let need = match need {
            Ok(need) => need,
            Err((code, detail)) => {
                close(&mut ws, code, &detail).await;
                continue;
            }
        };
        if generate(&mut ws, &shared, received, need).await.is_err() {
            return;
        }
    }
}

/// Streams one generation's tokens and `[DONE]`.
async fn generate<S>(
    ws: &mut WebSocketStream<S>,
    shared: &Shared,
    received: Instant,
    need: Need,
) -> Result<(), tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The socket is not read while queued: a hang-up shows at the first token's write.
    let client_gone = std::future::pending();
    let Some(mut gen) = shared
        .gpu
        .admit(received, need, Origin::Client, client_gone)
        .await
    else {
        return Ok(());
    };
    while let Some(batch) = gen.next_batch().await {
        for i in batch.clone() {
            ws.feed(Message::text(token_text(i))).await?;
        }
        ws.flush().await?;
        gen.written(batch);
    }
    ws.send(Message::text(DONE)).await?;
    gen.finish();
    Ok(())
}

/// Starts the closing handshake with `code`; the read loop then waits for the client's reply.
async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // Close reasons must fit a control frame (125 bytes including the 2-byte code).
    let mut cut = reason.len().min(120);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..cut].into(),
    };
    if let Err(e) = ws.close(Some(frame)).await {
        debug!(error = %e, "websocket close failed");
    }
}
