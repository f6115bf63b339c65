//! The engine-metrics scraper: one supervisor task on the control plane's runtime that follows
//! the shared table and keeps exactly one scrape task per scraped backend (pool name and
//! address), and the scrape tasks, each of which reads its backend's `/metrics` once per
//! interval at a random phase, publishes the reading to the backend's shared state (valid for
//! `stale_after`) and runs stall detection on it.
//!
//! Must never run on an engine worker, never take a lock the pick path takes (it only stores
//! atomics a pick reads), never hold an old table, never panic on what a backend sends, and
//! never log per scrape: a failing scrape is logged when it starts failing and when it works
//! again, a stall when it starts and when it ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::balance::{EngineScrape, SharedState, SharedTable, Table};
use crate::clock;

use super::checker::{random_below, RECONCILE_EVERY};
use super::engine_flavor::{self, Parsed, ReadError, Series};
use super::engine_stall::{Change, StallWatch};
use super::probe::ProbeError;
use super::probe_http;

/// A vLLM scrape with a few models is tens of KiB; 4 MiB bounds a runaway exporter (every
/// histogram of thousands of label sets) without refusing a real one.
pub const MAX_SCRAPE_BODY: usize = 4 * 1024 * 1024;

type Key = (String, SocketAddr);

/// Why one scrape gave no reading.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Fetch(#[from] ProbeError),
    #[error("status {0}, expected 200")]
    Status(u16),
    #[error("{0}")]
    Read(#[from] ReadError),
}

/// The running scraper. Dropping it stops every scrape.
#[derive(Debug)]
pub struct EngineScraper {
    task: JoinHandle<()>,
}

impl EngineScraper {
    /// Starts scraping the backends of every pool of `table` that has `[pool.engine_metrics]`,
    /// on `handle` (the control plane's runtime), following the table through reloads.
    pub fn spawn(handle: &Handle, table: Arc<SharedTable>) -> EngineScraper {
        EngineScraper {
            task: handle.spawn(supervise(table)),
        }
    }
}

impl Drop for EngineScraper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One scraped backend: its settings, its state (to clear when scraping stops) and its task.
struct Watch {
    spec: EngineScrape,
    state: SharedState,
    task: AbortHandle,
}

impl Watch {
    /// Stops the task and forgets what it published: a reading nobody refreshes, or a stall
    /// nobody can clear, must not outlive it.
    fn stop(self, key: &Key) {
        self.task.abort();
        self.state.engine.expire();
        if self.state.engine.set_stalled(false) {
            tracing::info!(pool = %key.0, backend = %key.1, "backend no longer stalled: engine metrics no longer scraped");
        }
    }
}

async fn supervise(table: Arc<SharedTable>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut watches: HashMap<Key, Watch> = HashMap::new();
    let mut seen: Weak<Table> = Weak::new();
    loop {
        let current = table.load_full();
        if !Weak::ptr_eq(&seen, &Arc::downgrade(&current)) {
            reconcile(&current, &mut watches, &mut tasks);
            seen = Arc::downgrade(&current);
        }
        drop(current);
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}

/// Starts a scrape for every scraped backend that has none (or whose settings changed) and
/// stops those of backends the table no longer scrapes.
fn reconcile(table: &Table, watches: &mut HashMap<Key, Watch>, tasks: &mut JoinSet<()>) {
    let mut wanted: HashMap<Key, ()> = HashMap::new();
    for pool in table.pools() {
        let Some(spec) = pool.engine_scrape() else {
            continue;
        };
        let name: Arc<str> = Arc::from(pool.name());
        for (addr, state) in pool.check_targets() {
            let key = (pool.name().to_string(), addr);
            wanted.insert(key.clone(), ());
            if watches.get(&key).is_some_and(|w| w.spec == *spec) {
                continue;
            }
            if let Some(old) = watches.remove(&key) {
                old.stop(&key);
            }
            let target = Target {
                pool: name.clone(),
                addr,
                state: state.clone(),
            };
            let task = tasks.spawn(scrape_loop(target, spec.clone()));
            let spec = spec.clone();
            watches.insert(key, Watch { spec, state, task });
        }
    }
    let gone: Vec<Key> = watches
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .cloned()
        .collect();
    for key in gone {
        if let Some(w) = watches.remove(&key) {
            w.stop(&key);
        }
    }
}

/// The backend one scrape task reads.
struct Target {
    pool: Arc<str>,
    addr: SocketAddr,
    state: SharedState,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn scrape_loop(target: Target, spec: EngineScrape) {
    let url_addr = match spec.port {
        Some(port) => SocketAddr::new(target.addr.ip(), port),
        None => target.addr,
    };
    let fixed = Series::of(&spec.flavor);
    let mut found: Option<Series> = None;
    let mut stall = StallWatch::default();
    let mut failing = false;
    let interval = spec.interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval_at(Instant::now() + random_below(interval), interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = scrape(url_addr, &spec).await.and_then(|parsed| {
            let series = match &fixed {
                Some(s) => s.clone(),
                None => detected(&target, &parsed, &mut found)?,
            };
            Ok(parsed.read(&series)?)
        });
        let now = clock::now_ms();
        target.state.counters.engine_scraped(result.is_ok());
        let change = match result {
            Ok(sample) => {
                // With our busy streams as they are at the scrape (see `least_load`).
                target
                    .state
                    .publish_engine(sample.reading, now.saturating_add(millis(spec.stale_after)));
                if std::mem::replace(&mut failing, false) {
                    tracing::info!(pool = %target.pool, backend = %target.addr, "engine metrics scrape works again");
                }
                let after = spec.stall_after.map(millis);
                stall.observe(now, sample.reading.running, sample.generation, after)
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(pool = %target.pool, backend = %target.addr, target = %url_addr, path = %spec.path, reason = %e, "engine metrics scrape fails; the last reading lapses after stale_after");
                }
                if target.state.engine.read_at(now).is_none() {
                    stall.lost()
                } else {
                    None
                }
            }
        };
        publish_stall(&target, change);
    }
}

/// With `flavor = "auto"`: the engine found before while its series are there, else the one
/// this scrape shows (logged when it is found or changes).
fn detected(
    target: &Target,
    parsed: &Parsed,
    found: &mut Option<Series>,
) -> Result<Series, ScrapeError> {
    if let Some(s) = found.as_ref() {
        if parsed.read(s).is_ok() {
            return Ok(s.clone());
        }
    }
    let s = parsed.detect()?;
    tracing::info!(pool = %target.pool, backend = %target.addr, engine = %s.engine, "engine metrics: found the engine's series");
    *found = Some(s.clone());
    Ok(s)
}

/// Publishes a stall change to the table; logs it if the table's flag changed.
fn publish_stall(target: &Target, change: Option<Change>) {
    let engine = &target.state.engine;
    // The guards publish: a change is logged only when it changed the table's flag.
    match change {
        Some(Change::Stalled {
            running,
            unchanged_ms,
        }) if engine.set_stalled(true) => {
            tracing::warn!(
                "pool {} backend {} stalled: {running} running, generation counter unchanged for {:.1}s",
                target.pool,
                target.addr,
                unchanged_ms as f64 / 1e3
            );
        }
        Some(Change::Recovered(why)) if engine.set_stalled(false) => {
            tracing::info!(pool = %target.pool, backend = %target.addr, reason = %why, "backend no longer stalled");
        }
        _ => {}
    }
}

/// One scrape: connect, `GET path`, a 200 with a body that parses; all within the timeout.
async fn scrape(addr: SocketAddr, spec: &EngineScrape) -> Result<Parsed, ScrapeError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(ProbeError::from)?;
        let _ = stream.set_nodelay(true);
        let (status, body) =
            probe_http::get(&mut stream, addr, &spec.path, MAX_SCRAPE_BODY).await?;
        if status != 200 {
            return Err(ScrapeError::Status(status));
        }
        Ok(body)
    };
    let body = match tokio::time::timeout(spec.timeout, exchange).await {
        Ok(body) => body?,
        Err(_) => return Err(ProbeError::Timeout(spec.timeout).into()),
    };
    // Off the control thread: a big scrape takes milliseconds to parse, which would delay
    // every health check and admin answer sharing it; and a panic in the parser on some
    // text becomes this scrape's error instead of ending the backend's scrape task.
    let parsed =
        tokio::task::spawn_blocking(move || engine_flavor::parse(&String::from_utf8_lossy(&body)))
            .await
            .map_err(|_| ReadError::Parse("the parser failed on this text".to_string()))?;
    Ok(parsed?)
}
