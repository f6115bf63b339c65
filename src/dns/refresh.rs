//! When names are resolved: all of them once at start (before the workers take clients, as
//! Envoy warms a STRICT_DNS cluster), then each every `dns_refresh`, and all at once after a
//! reload. Good answers go to the admin state, which rebuilds the table when a set changed.
//!
//! A failure is logged once when a name starts failing and once when it resolves again, never
//! per refresh; it changes no set. This must never block the control thread (lookups are
//! awaited, all due names concurrently) and never run on a worker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::runtime::Handle;

use crate::admin::AdminState;
use crate::config::{format_duration, Config, NamedBackend};

use super::{DnsResolver, NameKey, Resolved};

/// How long the loop sleeps with no name to resolve: it is woken by a reload anyway.
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// The longest a start waits for its names: past it, a DNS that does not answer delays the
/// start no further (the refresh loop goes on resolving them).
const START_WAIT: Duration = Duration::from_secs(5);

/// The resolver and, per name, when it is due and whether it is failing.
#[derive(Default)]
pub struct Refresher {
    resolver: Option<DnsResolver>,
    setup_failing: bool,
    names: HashMap<NameKey, NameState>,
}

struct NameState {
    next: Instant,
    failing: bool,
}

/// Every DNS entry of `config`, with its key.
fn entries(config: &Config) -> Vec<(NameKey, NamedBackend)> {
    config
        .pools
        .iter()
        .flat_map(|p| {
            p.names
                .iter()
                .map(move |n| ((p.name.clone(), n.label()), n.clone()))
        })
        .collect()
}

impl Refresher {
    /// A resolver for `servers`, made again when they changed (a reload); a failure to make
    /// one keeps the old one and is logged once.
    fn ensure_resolver(&mut self, servers: &[SocketAddr]) {
        if self
            .resolver
            .as_ref()
            .is_some_and(|r| r.servers() == servers)
        {
            return;
        }
        match DnsResolver::new(servers) {
            Ok(r) => {
                self.resolver = Some(r);
                self.setup_failing = false;
            }
            Err(e) => {
                if !self.setup_failing {
                    tracing::error!(error = %e, "DNS: no resolver; backend names keep their last addresses");
                }
                self.setup_failing = true;
            }
        }
    }

    /// Resolves the names of `config` that are due (every one with `all`) and returns the good
    /// answers; `known(key)` is how many addresses the name has now, for the failure log.
    async fn round(
        &mut self,
        config: &Config,
        all: bool,
        known: &(dyn Fn(&NameKey) -> usize + Sync),
    ) -> Vec<(NameKey, Vec<SocketAddr>)> {
        let entries = entries(config);
        self.names
            .retain(|k, _| entries.iter().any(|(e, _)| e == k));
        if entries.is_empty() {
            return Vec::new();
        }
        self.ensure_resolver(&config.runtime.dns_servers);
        let Some(resolver) = &self.resolver else {
            return Vec::new();
        };
        let now = Instant::now();
        let due: Vec<&(NameKey, NamedBackend)> = entries
            .iter()
            .filter(|(k, _)| all || self.names.get(k).is_none_or(|s| s.next <= now))
            .collect();
        let answers = join_all(due.iter().map(|(_, n)| resolver.lookup(&n.host, n.port))).await;
        let mut good = Vec::new();
        for ((key, n), answer) in due.into_iter().zip(answers) {
            let state = self.names.entry(key.clone()).or_insert(NameState {
                next: now,
                failing: false,
            });
            state.next = now + n.refresh;
            match answer {
                Ok(addrs) => {
                    if state.failing {
                        tracing::info!(pool = %key.0, addr = %key.1, "DNS: the name resolves again");
                    }
                    state.failing = false;
                    good.push((key.clone(), addrs));
                }
                Err(e) => {
                    if !state.failing {
                        let held = known(key);
                        tracing::error!(
                            pool = %key.0,
                            addr = %key.1,
                            error = %e,
                            kept = held,
                            retry = %format_duration(n.refresh),
                            "DNS: cannot resolve; the last good addresses stay backends (none if it never resolved)"
                        );
                    }
                    state.failing = true;
                }
            }
        }
        good
    }

    /// When the next name is due.
    fn next_due(&self) -> Option<Instant> {
        self.names.values().map(|s| s.next).min()
    }
}

/// Resolves every name of `config` once, on the control plane, and waits for it: the sets the
/// first table is built from (a name that does not resolve has none), and the refresher that
/// goes on from there. Logs each set like a change ("+addr ...").
pub fn resolve_at_start(handle: &Handle, config: &Config) -> (Resolved, Refresher) {
    let mut refresher = Refresher::default();
    if entries(config).is_empty() {
        return (Resolved::default(), refresher);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = config.clone();
    handle.spawn(async move {
        let round = tokio::time::timeout(START_WAIT, refresher.round(&cfg, true, &|_| 0)).await;
        let good = round.unwrap_or_else(|_| {
            tracing::warn!(
                wait = %format_duration(START_WAIT),
                "DNS: backend names not resolved in time; starting without them, resolving on"
            );
            Vec::new()
        });
        let _ = tx.send((good, refresher));
    });
    let Ok((good, refresher)) = rx.recv() else {
        // The control runtime went away; the refresh that would follow cannot run either.
        return (Resolved::default(), Refresher::default());
    };
    let mut resolved = Resolved::default();
    for (key, addrs) in good {
        if let Some(change) = resolved.set(key.clone(), addrs) {
            tracing::info!("pool {} addr {}: {change}", key.0, key.1);
        }
    }
    (resolved, refresher)
}

/// Runs the refresh loop on `handle` for as long as the control plane lives: due names are
/// resolved, changed sets handed to `admin` (which rebuilds the table), and a reload
/// (`AdminState::dns_wake`) makes every name due at once.
pub fn spawn(handle: &Handle, admin: Arc<AdminState>, mut refresher: Refresher) {
    handle.spawn(async move {
        let mut all = false;
        loop {
            let config = admin.config();
            let good = refresher
                .round(&config, all, &|k| admin.resolved_count(k))
                .await;
            admin.update_resolved(good);
            all = false;
            let wait = refresher
                .next_due()
                .map_or(IDLE_WAIT, |t| t.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = admin.dns_wake().notified() => all = true,
            }
        }
    });
}

/// For `ringlb check`: every name resolved once, a line each ("-> addresses", or why not). A
/// failure is not a config error: DNS may be down for a moment, and `run` retries.
pub fn check_names(config: &Config) -> Vec<String> {
    let entries = entries(config);
    if entries.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return vec![format!("dns: not resolved (no runtime: {e})")],
    };
    runtime.block_on(async {
        let resolver = match DnsResolver::new(&config.runtime.dns_servers) {
            Ok(r) => r,
            Err(e) => return vec![format!("dns: not resolved ({e})")],
        };
        let answers = join_all(
            entries
                .iter()
                .map(|(_, n)| resolver.lookup(&n.host, n.port)),
        )
        .await;
        entries
            .iter()
            .zip(answers)
            .map(|((key, n), answer)| match answer {
                Ok(addrs) => {
                    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    format!("dns: pool {:?} {} -> {}", key.0, key.1, list.join(", "))
                }
                Err(e) => format!(
                    "dns: pool {:?} {}: cannot resolve now ({e}); `run` starts without its \
                     addresses and retries every {}",
                    key.0,
                    key.1,
                    format_duration(n.refresh)
                ),
            })
            .collect()
    })
}
