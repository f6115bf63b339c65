//! What the admin API holds besides the server's [`Observer`]: the config it serves (for
//! listener and pool names, strategies and the digest), the operator overrides, and the
//! process counters other control services increment (reloads).
//!
//! Its mutex is the control plane's own: admin requests, a reload and a DNS refresh take it,
//! workers never do. It is the one owner of "build the table and store it": a backend action,
//! a reload and a changed DNS answer each rebuild the table from config + resolved names +
//! overrides under it and swap it in whole (marking the backends the new table dropped as
//! draining), so workers see it on their next pick without a lock and no two builds race.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::balance::{BackendSpec, Table, TableSpec};
use crate::config::{Config, DEFAULT_DRAIN_TIMEOUT, MAX_WEIGHT};
use crate::dns::{NameKey, Resolved};
use crate::engine::{table_spec, Observer};

use super::overrides::{Change, Override, Overrides};

/// Why a backend action was refused; each maps to an HTTP status in `routes`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("no pool named {0:?}")]
    UnknownPool(String),
    #[error("pool {pool:?} has no backend {addr}")]
    UnknownBackend { pool: String, addr: SocketAddr },
    #[error("weight must be from 1 to {max}, got {got}; use /drain to take a backend out")]
    BadWeight { got: u64, max: u32 },
}

/// Shared by the admin server and the control services (reload); see the module doc.
/// Runs a reload; Ok with a summary, Err with why nothing changed.
pub type ReloadHook = Box<dyn Fn() -> Result<String, String> + Send + Sync>;

pub struct AdminState {
    observer: Observer,
    reload_hook: std::sync::OnceLock<ReloadHook>,
    started_unix_s: f64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    current: Mutex<Current>,
    /// Woken by a reload: the DNS refresh resolves every name at once.
    dns_wake: tokio::sync::Notify,
}

struct Current {
    config: Arc<Config>,
    /// The last good answer of each of the config's DNS names.
    resolved: Resolved,
    overrides: Overrides,
}

impl AdminState {
    pub fn new(observer: Observer, config: &Config) -> AdminState {
        AdminState {
            observer,
            reload_hook: std::sync::OnceLock::new(),
            started_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            current: Mutex::new(Current {
                config: Arc::new(config.clone()),
                resolved: Resolved::default(),
                overrides: Overrides::default(),
            }),
            dns_wake: tokio::sync::Notify::new(),
        }
    }

    /// The names' sets the running table was first built from (at start, before any
    /// rebuild).
    pub fn seed_resolved(&self, resolved: Resolved) {
        self.current.lock().resolved = resolved;
    }

    /// Good DNS answers: each set that changed is logged ("pool P addr NAME: +a -b") and, if
    /// any did, the table is rebuilt once. Answers for names the config no longer has (a
    /// reload came first) are dropped.
    pub fn update_resolved(&self, answers: Vec<(NameKey, Vec<SocketAddr>)>) {
        let mut current = self.current.lock();
        let mut changes = Vec::new();
        for (key, addrs) in answers {
            if !crate::dns::is_configured(&current.config, &key) {
                continue;
            }
            if let Some(change) = current.resolved.set(key.clone(), addrs) {
                changes.push((key, change));
            }
        }
        if changes.is_empty() {
            return;
        }
        self.rebuild(&mut current);
        // Logged once the table is in place: what the line says is what the next pick sees.
        for (key, change) in changes {
            tracing::info!("pool {} addr {}: {change}", key.0, key.1);
        }
    }

    /// How many addresses name `key` has now.
    pub fn resolved_count(&self, key: &NameKey) -> usize {
        self.current.lock().resolved.get(key).len()
    }

    /// The DNS name (`host:port`) backend `addr` of `pool` came from; None for a literal one.
    pub fn origin_of(&self, pool: &str, addr: SocketAddr) -> Option<String> {
        let current = self.current.lock();
        current.resolved.origin(&current.config, pool, addr)
    }

    /// What the DNS refresh waits on besides its timer (a reload notifies it).
    pub fn dns_wake(&self) -> &tokio::sync::Notify {
        &self.dns_wake
    }

    /// Sets what `POST /reload` runs (the process's reloader); once.
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        let _ = self.reload_hook.set(hook);
    }

    /// Runs the reload hook (`POST /reload`).
    pub fn reload(&self) -> Result<String, String> {
        match self.reload_hook.get() {
            Some(hook) => hook(),
            None => Err("reload is not available in this process".into()),
        }
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Counts one reload attempt (`ringlb_config_reloads_total`, and
    /// `ringlb_config_reload_failures_total` if it failed). For the reload service.
    pub fn record_reload(&self, ok: bool) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reload_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (reloads, reload failures) so far.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.reload_failures.load(Ordering::Relaxed),
        )
    }

    pub fn started_unix_s(&self) -> f64 {
        self.started_unix_s
    }

    /// The config being served.
    pub fn config(&self) -> Arc<Config> {
        self.current.lock().config.clone()
    }

    /// The override of one backend, if any.
    pub fn override_of(&self, pool: &str, addr: SocketAddr) -> Option<Override> {
        self.current.lock().overrides.get(pool, addr)
    }

    /// For a reload: makes `config` the one served, builds its table with the overrides that
    /// still hold (those whose backend it changed are dropped and logged) and swaps it in.
    /// Under the same lock as operator changes, so neither undoes the other.
    pub fn apply_config(&self, config: &Config) {
        let mut current = self.current.lock();
        current.config = Arc::new(config.clone());
        let Current {
            config, resolved, ..
        } = &mut *current;
        resolved.retain_configured(config);
        self.rebuild(&mut current);
        drop(current);
        // Names the reload added have no addresses yet; every name is resolved again now.
        self.dns_wake.notify_one();
    }

    /// Applies one operator change to backend `addr` of pool `pool` and swaps the rebuilt
    /// table in. Returns the override now in force.
    pub fn change(
        &self,
        pool: &str,
        addr: SocketAddr,
        change: Change,
    ) -> Result<Override, ActionError> {
        if let Change::Weight(w) = change {
            if w == 0 || w > MAX_WEIGHT {
                return Err(ActionError::BadWeight {
                    got: u64::from(w),
                    max: MAX_WEIGHT,
                });
            }
        }
        let mut current = self.current.lock();
        let base = configured(&current.resolved.expand(&current.config), pool, addr)?;
        current.overrides.set(pool, base, change);
        self.rebuild(&mut current);
        tracing::info!(pool, backend = %addr, ?change, "operator override applied");
        Ok(current.overrides.get(pool, addr).unwrap_or_default())
    }

    /// Builds the table of `current` (config + resolved names + overrides) and swaps it in;
    /// a backend the old table had and the new one lacks (a reload removed it, or its address
    /// left a DNS answer) keeps its live streams until its pool's `drain_timeout`.
    fn rebuild(&self, current: &mut Current) {
        let spec = spec_with_overrides(current);
        let (old, new) = self
            .observer
            .table()
            .replace(Table::build(&spec, self.observer.registry()));
        let now = crate::clock::now_ms();
        let pools = &current.config.pools;
        Table::mark_removed(&old, &new, |pool| {
            let timeout = pools
                .iter()
                .find(|p| p.name == pool)
                .map_or(DEFAULT_DRAIN_TIMEOUT, |p| p.drain_timeout);
            now.saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX / 2))
        });
    }
}

/// Backend `addr` of pool `pool` as the config has it.
fn configured(config: &Config, pool: &str, addr: SocketAddr) -> Result<BackendSpec, ActionError> {
    let spec = table_spec(config);
    let p = spec
        .pools
        .into_iter()
        .find(|p| p.name == pool)
        .ok_or_else(|| ActionError::UnknownPool(pool.to_owned()))?;
    p.backends
        .into_iter()
        .find(|b| b.addr == addr)
        .ok_or_else(|| ActionError::UnknownBackend {
            pool: pool.to_owned(),
            addr,
        })
}

fn spec_with_overrides(current: &mut Current) -> TableSpec {
    let mut spec = table_spec(&current.resolved.expand(&current.config));
    for (pool, addr) in current.overrides.apply(&mut spec) {
        tracing::info!(pool, backend = %addr, "operator override dropped: the config changed this backend");
    }
    spec
}
