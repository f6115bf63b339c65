//! Freezing generation, for stall-detection tests: while stalled every stream stays open and
//! keeps its slot (it still counts in `running`), but no token is emitted, so the generation
//! counter stops, as when a GPU hangs under a live server. Switched through
//! [`MockBackend::stall`](super::MockBackend::stall) / `unstall`, or by another process with
//! `POST /admin/stall` and `POST /admin/unstall`.
//!
//! Must never drop or fail a stream because of a stall, and never let tokens that fell due
//! during a stall burst out afterwards: the schedule resumes at its pace.

use std::sync::Arc;

use tokio::sync::watch;

use super::conn::Conn;
use super::inference::Outcome;
use super::server::Shared;

/// The switch every generation of one backend watches; `true` means stalled.
#[derive(Debug)]
pub(crate) struct StallSwitch(watch::Sender<bool>);

impl StallSwitch {
    pub(crate) fn new() -> Arc<StallSwitch> {
        Arc::new(StallSwitch(watch::Sender::new(false)))
    }

    pub(crate) fn set(&self, stalled: bool) {
        self.0.send_replace(stalled);
    }

    pub(crate) fn get(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver for one generation; the sender lives in the `Arc` the generation also holds,
    /// so `changed()` never fails while the generation runs.
    pub(crate) fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// `POST /admin/stall` and `POST /admin/unstall`.
pub(crate) async fn admin(
    conn: &mut Conn,
    shared: &Shared,
    stalled: bool,
    keep_alive: bool,
) -> Outcome {
    shared.stall.set(stalled);
    tracing::info!(backend = %shared.name, stalled, "generation stall switched");
    let body: &[u8] = if stalled { b"stalled" } else { b"running" };
    let sent = conn
        .respond(&shared.name, (200, "OK"), "text/plain", body, keep_alive)
        .await;
    match sent {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Drop,
    }
}
