//! The `websocket` check: a client handshake (`GET path` with `Upgrade: websocket`) that the
//! backend must accept with 101, then a close frame. It proves the backend's WebSocket
//! endpoint is served, not just its port.
//!
//! Must never wait for the backend's close reply (the handshake already decided) and never
//! panic on a malformed answer.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tungstenite::Error as WsError;

use super::ProbeError;

/// How long the close frame may take to go out after a passing handshake; the verdict is
/// already in, so this only bounds the goodbye.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

pub(super) async fn check(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
) -> Result<(), ProbeError> {
    let url = format!("ws://{addr}{path}");
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((mut ws, _response)) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
            Ok(())
        }
        Err(WsError::Http(response)) => Err(ProbeError::Upgrade(response.status().as_u16())),
        Err(WsError::Io(e)) => Err(e.into()),
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Err(ProbeError::Closed),
        Err(e) => Err(ProbeError::Protocol(e.to_string())),
    }
}
