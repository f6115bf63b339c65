//! The control plane's runtime: one thread with a small tokio runtime for everything that is
//! not the data plane (admin HTTP, health checks, metric scrapes, reload). Services spawn
//! their tasks on its [`Handle`]. It must never run on, or be waited on by, an engine worker:
//! a slow check or a stuck HTTP client can delay control work, never a relayed byte.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot start the control thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot build the control runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the control thread exited while starting")]
    Gone,
}

/// The running control plane. Dropping it stops every task spawned on it and joins the thread.
pub struct ControlPlane {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ControlPlane {
    /// Starts the control thread (`ringlb-control`) and its single-threaded runtime: control
    /// work is light, and the cores belong to the engine.
    pub fn start() -> Result<ControlPlane, ControlError> {
        let (handle_tx, handle_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ringlb-control".into())
            .spawn(move || {
                let rt = match Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Runs spawned tasks until stopped; dropping the runtime cancels them.
                let _ = rt.block_on(stop_rx);
            })
            .map_err(ControlError::Thread)?;
        let handle = match handle_rx.recv() {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(ControlError::Runtime(e)),
            Err(_) => return Err(ControlError::Gone),
        };
        Ok(ControlPlane {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Where control services spawn their tasks.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_spawned_tasks_and_stops_on_drop() {
        let cp = ControlPlane::start().unwrap();
        let (tx, rx) = mpsc::channel();
        cp.handle().spawn(async move {
            tokio::task::yield_now().await;
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        let name = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("ringlb-control"));
        // A task that never ends must not keep the drop from returning.
        cp.handle().spawn(std::future::pending::<()>());
        drop(cp);
    }
}
