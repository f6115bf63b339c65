//! WebSocket mode: open ws://TARGET/v1/stream, then per request send the prompt as a JSON text
//! message and count text messages (tokens) until `[DONE]`; several requests per socket.
//! Must never treat a socket that closed mid-stream as a finished stream.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tungstenite::{Message, Utf8Bytes};

use super::error::{ErrorKind, RequestError};
use super::lengths::Lengths;
use super::options::LoadOptions;
use super::runner::{Protocol, Reuse};
use super::stats::Sample;
use super::wire::connect_tcp;

pub struct Ws {
    url: String,
    /// The message of every stream, when they all ask for the same `max_tokens`.
    fixed: Option<Utf8Bytes>,
    prompt_text: String,
    lengths: Lengths,
    backend_header: Option<String>,
}

pub struct WsConn {
    ws: WebSocketStream<TcpStream>,
    backend: Option<String>,
}

impl Ws {
    pub fn new(opts: &LoadOptions) -> Self {
        let lengths = opts.lengths();
        Ws {
            url: format!("ws://{}{}", opts.target, opts.path()),
            fixed: lengths.fixed().map(|n| message(&opts.prompt, n)),
            prompt_text: opts.prompt.clone(),
            lengths,
            backend_header: opts.backend_header.clone(),
        }
    }
}

fn message(prompt: &str, max_tokens: u64) -> Utf8Bytes {
    let msg = serde_json::json!({ "prompt": prompt, "max_tokens": max_tokens });
    Utf8Bytes::from(msg.to_string())
}

fn ws_error(what: &str, err: tungstenite::Error) -> RequestError {
    use tungstenite::Error as E;
    let kind = match err {
        E::ConnectionClosed | E::AlreadyClosed | E::Io(_) => ErrorKind::Closed,
        _ => ErrorKind::Protocol,
    };
    RequestError::new(kind, format!("{what}: {err}"))
}

impl Protocol for Ws {
    type Conn = WsConn;

    async fn connect(&self, addr: SocketAddr) -> Result<WsConn, RequestError> {
        let stream = connect_tcp(addr).await?;
        let (ws, response) = tokio_tungstenite::client_async(self.url.as_str(), stream)
            .await
            .map_err(|e| {
                RequestError::new(ErrorKind::Connect, format!("websocket handshake: {e}"))
            })?;
        let backend = self.backend_header.as_deref().and_then(|name| {
            let value = response.headers().get(name)?;
            Some(String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        });
        Ok(WsConn { ws, backend })
    }

    async fn request(&self, conn: &mut WsConn, sample: &mut Sample) -> Result<Reuse, RequestError> {
        let max_tokens = self.lengths.for_request(sample.seq);
        sample.max_tokens = Some(max_tokens);
        let prompt = match &self.fixed {
            Some(prompt) => prompt.clone(),
            None => message(&self.prompt_text, max_tokens),
        };
        sample.bytes_out += prompt.len() as u64;
        conn.ws
            .send(Message::Text(prompt))
            .await
            .map_err(|e| ws_error("send prompt", e))?;
        sample.backend.clone_from(&conn.backend);
        loop {
            let msg = match conn.ws.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    return Err(ws_error(&format!("after {} tokens", sample.tokens), e))
                }
                None => {
                    return Err(RequestError::closed(format!(
                        "websocket ended after {} tokens, no [DONE]",
                        sample.tokens
                    )))
                }
            };
            match msg {
                Message::Text(text) => {
                    sample.mark_first_byte();
                    sample.bytes_in += text.len() as u64;
                    if text.trim() == "[DONE]" {
                        return Ok(Reuse::Keep);
                    }
                    sample.add_tokens(1);
                }
                Message::Binary(data) => {
                    sample.mark_first_byte();
                    sample.bytes_in += data.len() as u64;
                }
                Message::Close(frame) => {
                    let why = frame
                        .map(|f| format!(" ({} {})", f.code, f.reason))
                        .unwrap_or_default();
                    return Err(RequestError::closed(format!(
                        "peer closed the websocket after {} tokens{why}",
                        sample.tokens
                    )));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}
