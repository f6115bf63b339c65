//! The admin API (`[admin]` in the config): Prometheus metrics, a JSON status, a live status
//! page, and operator overrides (drain, enable, weight) per backend. It runs on the control
//! plane's thread ([`crate::control`]), off the engine's cores.
//!
//! - `server`: the HTTP accept loop, access check and routing table;
//! - `auth`: the bearer token (or Basic password, for browsers);
//! - `sample`: one reading of the server for a request; `metrics` and `expo` turn it into
//!   Prometheus text, `status` into JSON; `page` is the HTML page;
//! - `routes`: the backend actions; `overrides` and `state`: what they change and how the
//!   table is rebuilt from config + overrides.
//!
//! What it must never do: block or wait on a worker, take a lock a worker takes (it reads
//! atomics and `ArcSwap` loads through [`Observer`](crate::engine::Observer) and swaps whole
//! tables in), panic or `unwrap` on anything a client sends, or answer a protected endpoint
//! without the token.

mod auth;
mod backend_metrics;
mod expo;
mod metrics;
mod overrides;
mod page;
mod routes;
mod sample;
mod server;
mod state;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::config::Config;

pub use overrides::{Change, Override, Overrides};
pub use state::{ActionError, AdminState, ReloadHook};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin API: cannot listen on {addr}: {}", crate::engine::bind_reason(*addr, error))]
    Bind {
        addr: SocketAddr,
        /// Not a `source()`: its text is already in the message.
        error: std::io::Error,
    },
}

/// A running admin API. Dropping it stops accepting (open requests are cut).
pub struct AdminServer {
    addr: SocketAddr,
    state: Arc<AdminState>,
    task: JoinHandle<()>,
    /// A second descriptor of the listening socket, to lend to a hand-over; closed with it.
    socket: std::net::TcpListener,
}

impl AdminServer {
    /// The address it listens on (port 0 in the config is resolved here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A duplicate of the listening socket, for a new process taking this one over.
    pub fn lend(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        Ok(self.socket.try_clone()?.into())
    }

    /// The state other control services share: reload counts, config, overrides.
    pub fn state(&self) -> &Arc<AdminState> {
        &self.state
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the admin API of `config` for `server` on the control runtime `handle`; None if the
/// config has no `[admin]`. The socket is bound before this returns, so a port in use is an
/// error here, not a log line later.
pub fn start(
    handle: &Handle,
    config: &Config,
    state: Arc<AdminState>,
) -> Result<Option<AdminServer>, AdminError> {
    start_on(handle, config, state, None)
}

/// [`start`], on `inherited` (the admin socket a hand-over brought from the process taken
/// over, bound to the same address) instead of binding one, if given.
pub fn start_on(
    handle: &Handle,
    config: &Config,
    state: Arc<AdminState>,
    inherited: Option<std::net::TcpListener>,
) -> Result<Option<AdminServer>, AdminError> {
    let Some(admin) = &config.admin else {
        return Ok(None);
    };
    let bind_err = |error| AdminError::Bind {
        addr: admin.bind,
        error,
    };
    let std_listener = match inherited {
        Some(l) => l,
        None => std::net::TcpListener::bind(admin.bind).map_err(bind_err)?,
    };
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let socket = std_listener.try_clone().map_err(bind_err)?;
    let addr = std_listener.local_addr().map_err(bind_err)?;
    let listener = {
        let _runtime = handle.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?
    };
    let ctx = Arc::new(server::Ctx {
        state: state.clone(),
        access: auth::Access::new(admin.token.clone(), admin.metrics_public),
    });
    let task = handle.spawn(server::serve(listener, ctx));
    tracing::info!(%addr, token = admin.token.is_some(), "admin API listening");
    Ok(Some(AdminServer {
        addr,
        state,
        task,
        socket,
    }))
}
