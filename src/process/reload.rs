//! Config reload (SIGHUP, `POST /reload`): re-read and validate the file; if it does not
//! validate, keep running on the old config and say why (file:line:col), counted in
//! `ringlb_config_reload_failures_total`; if it does, lay it over the running config
//! (`layout`), swap the backend table in whole (with the operator's overrides that still hold;
//! counts, health and latency of unchanged backends carry over by identity) and then publish
//! the engine policy. No connection is touched: live streams keep their backend (a removed one
//! included) and the timeouts they started with. Must never leave the table and the policy
//! out of step, and never run two reloads at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::admin::AdminState;
use crate::config::Config;
use crate::engine::EngineReload;

use super::layout::lay_out;

/// Everything a reload needs; one per process.
pub struct Reloader {
    path: PathBuf,
    /// The config in force, laid out (pool and listener indexes as the engine knows them),
    /// and which of its listeners a reload closed.
    current: Mutex<(Config, Vec<bool>)>,
    admin: Arc<AdminState>,
    engine: EngineReload,
}

impl Reloader {
    pub fn new(path: &Path, config: &Config, admin: Arc<AdminState>, engine: EngineReload) -> Self {
        Reloader {
            path: path.to_path_buf(),
            current: Mutex::new((config.clone(), vec![false; config.listeners.len()])),
            admin,
            engine,
        }
    }

    /// Reloads the file; Ok with a one-line summary, or Err with why nothing changed.
    pub fn reload(&self) -> Result<String, String> {
        let mut guard = self.current.lock();
        let (current, closed) = &mut *guard;
        let new = match crate::config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                self.admin.record_reload(false);
                tracing::error!(error = %e, "reload refused: the config does not validate; the old one keeps serving");
                return Err(e.to_string());
            }
        };
        let layout = lay_out(current, &new, closed);
        if let Err(e) = self.engine.check(&layout.config) {
            self.admin.record_reload(false);
            tracing::error!(error = %e, "reload refused; the old config keeps serving");
            return Err(e.to_string());
        }
        // Bind new listeners before anything changes: an address in use refuses the reload.
        let mut bound = Vec::with_capacity(layout.added.len());
        for &i in &layout.added {
            let l = &layout.config.listeners[i];
            match self.engine.bind_listener(l) {
                Ok(b) => bound.push((i, b)),
                Err(e) => {
                    self.admin.record_reload(false);
                    tracing::error!(listener = %l.name, error = %e, "reload refused; the old config keeps serving");
                    return Err(format!("listener {:?}: {e}", l.name));
                }
            }
        }
        for setting in &layout.needs_restart {
            tracing::warn!(setting = %setting, "this change needs a restart; the running value stays");
        }
        let mut summary = summarize(current, &layout.config);
        // Builds and swaps the table (names resolved so far kept, removed backends draining),
        // and wakes the DNS refresh to resolve every name again.
        self.admin.apply_config(&layout.config);
        if let Err(e) = self.engine.apply(&layout.config) {
            // Checked above under the same lock: cannot happen. Said loudly if it ever does.
            tracing::error!(error = %e, "reload: the policy could not be published");
            return Err(e.to_string());
        }
        for (i, limit) in &layout.limits {
            self.engine.set_listener_limit(*i, *limit);
        }
        closed.resize(layout.config.listeners.len(), false);
        for &i in &layout.removed {
            closed[i] = true;
            let name = &layout.config.listeners[i].name;
            self.engine.remove_listener(i, name);
            tracing::info!(listener = %name, "listener removed: no new clients; its streams go on");
            summary.push_str(&format!(", listener {name} removed"));
        }
        for (i, b) in bound {
            let l = &layout.config.listeners[i];
            match self.engine.start_listener(i, l, b) {
                Ok(addr) => {
                    tracing::info!(listener = %l.name, %addr, "listening");
                    summary.push_str(&format!(", listener {} added on {addr}", l.name));
                }
                Err(e) => tracing::error!(listener = %l.name, error = %e, "listener not started"),
            }
        }
        *current = layout.config;
        self.admin.record_reload(true);
        tracing::info!(changes = %summary, digest = %current.digest, "config reloaded");
        Ok(summary)
    }

    /// Name and configured `bind` of listener `index` of the config in force.
    pub fn listener(&self, index: usize) -> Option<(String, std::net::SocketAddr)> {
        let guard = self.current.lock();
        guard
            .0
            .listeners
            .get(index)
            .map(|l| (l.name.clone(), l.bind))
    }

    /// The shutdown timeout in force (it applies live).
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        self.current.lock().0.runtime.shutdown_timeout
    }
}

/// What the reload changes, in a line: pools and backends added, removed, changed.
fn summarize(old: &Config, new: &Config) -> String {
    let mut parts = Vec::new();
    for p in &new.pools {
        let Some(o) = old.pools.iter().find(|o| o.name == p.name) else {
            parts.push(format!(
                "pool {} added ({} backends)",
                p.name,
                p.backends.len() + p.names.len()
            ));
            continue;
        };
        if p.backends.is_empty()
            && p.names.is_empty()
            && !(o.backends.is_empty() && o.names.is_empty())
        {
            parts.push(format!("pool {} removed (its streams go on)", p.name));
            continue;
        }
        for b in &p.backends {
            match o.backends.iter().find(|x| x.addr == b.addr) {
                None => parts.push(format!("{}: {} added", p.name, b.addr)),
                Some(x)
                    if x.weight != b.weight
                        || x.max_connections != b.max_connections
                        || x.tier != b.tier =>
                {
                    parts.push(format!("{}: {} changed", p.name, b.addr));
                }
                Some(_) => {}
            }
        }
        for n in &p.names {
            if !o.names.iter().any(|x| x.label() == n.label()) {
                parts.push(format!("{}: name {} added", p.name, n.label()));
            }
        }
        for x in &o.names {
            if !p.names.iter().any(|n| n.label() == x.label()) {
                parts.push(format!(
                    "{}: name {} removed (its addresses drain)",
                    p.name,
                    x.label()
                ));
            }
        }
        for x in &o.backends {
            if !p.backends.iter().any(|b| b.addr == x.addr) {
                parts.push(format!(
                    "{}: {} removed (its streams go on)",
                    p.name, x.addr
                ));
            }
        }
    }
    if parts.is_empty() {
        "no backend changes".into()
    } else {
        parts.join(", ")
    }
}
