//! The checker: one supervisor task on the control plane's runtime that follows the shared
//! table and keeps exactly one watch task per checked backend (pool name and address), and the
//! watch tasks, each of which probes its backend once per interval at a random phase, feeds
//! the hysteresis and publishes transitions to the backend's shared state.
//!
//! Must never probe a backend twice per interval, never hold an old table (it would keep
//! backends a reload removed alive in the registry), and never log a state it did not change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::Rng;
use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::balance::{ActiveCheck, CheckStatus, OnDown, SharedState, SharedTable, Table};
use crate::clock;

use super::probe::probe;
use super::state::{Hysteresis, Verdict};

/// How often the supervisor looks for a new table (a reload). A pointer comparison when
/// nothing changed.
pub(crate) const RECONCILE_EVERY: Duration = Duration::from_millis(500);
/// A backend with no result yet gets its first check within this long (random), instead of
/// waiting for its phase: with `start = "unknown"` it takes no stream until then.
const FIRST_CHECK_WITHIN: Duration = Duration::from_millis(100);

type Key = (String, SocketAddr);

/// The running checker. Dropping it stops every check.
#[derive(Debug)]
pub struct Checker {
    task: JoinHandle<()>,
}

impl Checker {
    /// Starts checking the backends of every pool of `table` that has an active check, on
    /// `handle` (the control plane's runtime), following the table through reloads.
    pub fn spawn(handle: &Handle, table: Arc<SharedTable>) -> Checker {
        Checker {
            task: handle.spawn(supervise(table)),
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        // Aborting the supervisor drops its JoinSet, which aborts every watch task.
        self.task.abort();
    }
}

/// One watched backend: the check it runs and its task.
struct Watch {
    check: ActiveCheck,
    task: AbortHandle,
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

/// Starts a watch for every checked backend that has none (or whose check changed) and stops
/// those of backends the table no longer checks.
fn reconcile(table: &Table, watches: &mut HashMap<Key, Watch>, tasks: &mut JoinSet<()>) {
    let mut wanted: HashMap<Key, ()> = HashMap::new();
    for pool in table.pools() {
        let Some(check) = pool.check() else { continue };
        let name: Arc<str> = Arc::from(pool.name());
        for (addr, state) in pool.check_targets() {
            let key = (pool.name().to_string(), addr);
            wanted.insert(key.clone(), ());
            if watches.get(&key).is_some_and(|w| w.check == *check) {
                continue;
            }
            if let Some(old) = watches.remove(&key) {
                old.task.abort();
            }
            let target = Target {
                pool: name.clone(),
                addr,
                state,
            };
            let task = tasks.spawn(watch(target, check.clone()));
            watches.insert(
                key,
                Watch {
                    check: check.clone(),
                    task,
                },
            );
        }
    }
    watches.retain(|key, w| {
        let keep = wanted.contains_key(key);
        if !keep {
            w.task.abort();
        }
        keep
    });
}

/// The backend one watch task checks.
struct Target {
    pool: Arc<str>,
    addr: SocketAddr,
    state: SharedState,
}

async fn watch(target: Target, check: ActiveCheck) {
    let mut hysteresis = Hysteresis::new(check.rise, check.fall, target.state.check.status());
    let interval = check.interval.max(Duration::from_millis(1));
    if hysteresis.verdict() == Verdict::Unknown {
        tokio::time::sleep(random_below(FIRST_CHECK_WITHIN.min(interval))).await;
        round(&target, &check, &mut hysteresis).await;
    }
    let mut ticker = tokio::time::interval_at(Instant::now() + random_below(interval), interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        round(&target, &check, &mut hysteresis).await;
    }
}

pub(super) fn random_below(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..ms))
}

/// One check, and the transition it causes (published and logged once).
async fn round(target: &Target, check: &ActiveCheck, hysteresis: &mut Hysteresis) {
    let result = probe(target.addr, &check.probe, check.timeout).await;
    if let Err(e) = &result {
        tracing::debug!(pool = %target.pool, backend = %target.addr, reason = %e, "health check failed");
    }
    match (hysteresis.record(result.is_ok()), result) {
        (Some(Verdict::Up), _) => {
            let before = target.state.check_up_at(clock::now_ms());
            tracing::info!(
                pool = %target.pool,
                backend = %target.addr,
                from = status_word(before),
                passes = if before == CheckStatus::Unknown { 1 } else { check.rise },
                "backend up: health check passes"
            );
        }
        (Some(Verdict::Down), Err(e)) => {
            let reset = check.on_down == OnDown::Reset;
            let before = target.state.check_down(e.failure(), reset);
            tracing::warn!(
                pool = %target.pool,
                backend = %target.addr,
                from = status_word(before),
                reason = %e,
                live_streams = if reset { "reset" } else { "kept" },
                "backend down: health check fails"
            );
        }
        _ => {}
    }
}

fn status_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::NotChecked => "not checked",
        CheckStatus::Unknown => "unknown",
        CheckStatus::Up => "up",
        CheckStatus::Down(_) => "down",
    }
}
