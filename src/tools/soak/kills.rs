//! The backend kills of a run: kill `i` of `k` happens at `i/(k+1)` of the run, counted in
//! time over a sustained soak (`--duration`) and in streams done otherwise, so every kill lands
//! mid-run however fast the machine is; the victim (a different backend each time while there
//! are any left) comes from the run seed; it stays down for the down time and is restarted on
//! the same port. Must never kill a second backend while one is down, and never return with a
//! backend down that could be restarted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::Notify;

use super::backend::Backend;
use super::verdict::KillMark;

/// Longest a restarted backend may wait for its port to be free again.
const REBIND_WITHIN: Duration = Duration::from_secs(10);

/// Streams done so far, for the kills to wait on.
#[derive(Default)]
pub struct Done {
    count: AtomicUsize,
    finished: AtomicBool,
    changed: Notify,
}

impl Done {
    pub fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    pub fn get(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// No more streams will finish (all did, or the run's deadline passed).
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Waits until `n` streams are done; false if the run finished first.
    async fn reach(&self, n: usize) -> bool {
        loop {
            let changed = self.changed.notified();
            if self.get() >= n {
                return true;
            }
            if self.finished.load(Ordering::Acquire) {
                return false;
            }
            changed.await;
        }
    }
}

/// One kill, as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct KillEvent {
    pub backend: usize,
    pub at_ms: u64,
    /// When the backend's listening socket was closed (its accept queue reset).
    pub closed_ms: u64,
    /// Streams done when it happened.
    pub streams_done: usize,
    pub down_ms: u64,
    pub rebind_attempts: u32,
    pub restart_error: Option<String>,
}

impl KillEvent {
    pub fn mark(&self) -> KillMark {
        KillMark {
            backend: self.backend,
            at_ms: self.at_ms,
            closed_ms: self.closed_ms,
        }
    }
}

/// What "i/(k+1) of the run" is counted in.
pub enum KillTiming {
    /// Streams done out of this many.
    Done { streams: usize },
    /// Time over this span from this instant.
    Time { from: Instant, over: Duration },
}

pub struct KillPlan {
    pub kills: usize,
    pub timing: KillTiming,
    pub down_time: Duration,
    pub seed: u64,
    pub clock: Instant,
}

/// Runs the kills; gives the fleet back, every backend up, with what happened.
pub async fn schedule(
    mut fleet: Vec<Backend>,
    plan: KillPlan,
    done: Arc<Done>,
) -> (Vec<Backend>, Vec<KillEvent>) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x6b11_1000);
    let mut victims: Vec<usize> = Vec::new();
    let mut events = Vec::new();
    for i in 1..=plan.kills {
        let due = match plan.timing {
            KillTiming::Done { streams } => done.reach(streams * i / (plan.kills + 1)).await,
            KillTiming::Time { from, over } => {
                let at = from + over.mul_f64(i as f64 / (plan.kills + 1) as f64);
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => true,
                    reached = done.reach(usize::MAX) => reached,
                }
            }
        };
        if !due {
            break;
        }
        if victims.is_empty() {
            victims = (0..fleet.len()).collect();
            victims.shuffle(&mut rng);
        }
        let b = &mut fleet[victims.pop().expect("refilled above")];
        let at_ms = plan.clock.elapsed().as_millis() as u64;
        let streams_done = done.get();
        let closed = b.kill().await;
        let closed_ms = closed.saturating_duration_since(plan.clock).as_millis() as u64;
        eprintln!(
            "[{:>5.1}s] killed backend {} ({}); back in {:?}",
            at_ms as f64 / 1000.0,
            b.index,
            b.addr,
            plan.down_time
        );
        tokio::time::sleep(plan.down_time).await;
        let down_ms = plan.clock.elapsed().as_millis() as u64 - at_ms;
        let (rebind_attempts, restart_error) = match b.restart(Instant::now() + REBIND_WITHIN).await
        {
            Ok(n) => (n, None),
            Err(e) => (0, Some(format!("cannot listen on {} again: {e}", b.addr))),
        };
        events.push(KillEvent {
            backend: b.index,
            at_ms,
            closed_ms,
            streams_done,
            down_ms,
            rebind_attempts,
            restart_error,
        });
    }
    (fleet, events)
}
