//! Watching the ringlb process: a baseline once it is quiet, a sampler that keeps the peak and
//! prints a progress line while the streams run, the wait for descriptors and memory to come
//! back afterwards, and its CPU over an idle window. Must never report a value it did not read
//! (a failed read is an error), and never wait without a deadline.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::SoakError;
use super::header::Header;
use super::kills::Done;
use super::procfs::{self, Usage, USER_HZ};
use serde::Serialize;

/// How often the process is read while waiting for it to settle, and while the streams run.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The baseline is taken once the descriptor count held still for this many readings.
const STILL_READINGS: u32 = 5;
/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Waits (up to `within`) until ringlb's descriptor count holds still, then reads it.
pub async fn baseline(pid: u32, within: Duration) -> Result<Usage, SoakError> {
    let deadline = Instant::now() + within;
    let mut last = procfs::usage(pid)?;
    let mut still = 0;
    while still < STILL_READINGS && Instant::now() < deadline {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let now = procfs::usage(pid)?;
        still = if now.fds == last.fds { still + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

/// The highest readings seen while the streams ran.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Peak {
    pub rss_kib: u64,
    pub fds: u64,
}

impl Peak {
    pub fn add(&mut self, u: Usage) {
        self.rss_kib = self.rss_kib.max(u.rss_kib);
        self.fds = self.fds.max(u.fds);
    }
}

/// One progress line: where the run stood, and the CPU ringlb and the driver used since the
/// line before (percent of one core). A stretch where streams stop finishing while ringlb's CPU
/// drops is ringlb waiting; one where the driver is at 200% is the driver out of cores.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tick {
    pub t_s: f64,
    pub started: usize,
    pub done: usize,
    pub ringlb_fds: u64,
    pub ringlb_cpu_pct: f64,
    pub driver_cpu_pct: f64,
}

/// What the sampler shares with the run.
pub struct Watch {
    pub pid: u32,
    pub clock: Instant,
    pub started: Arc<Mutex<Vec<Header>>>,
    pub done: Arc<Done>,
    pub peak: Arc<Mutex<Peak>>,
    pub timeline: Arc<Mutex<Vec<Tick>>>,
}

fn cpu_pct(ticks: u64, over: Duration) -> f64 {
    ticks as f64 / USER_HZ / over.as_secs_f64().max(1e-3) * 100.0
}

/// Samples until aborted (the process having gone is noticed by the run, not here).
pub async fn sample(w: Watch) {
    let mut next_line = Instant::now() + PROGRESS_EVERY;
    let me = std::process::id();
    let mut last = (Instant::now(), cpu(w.pid), cpu(me));
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let Ok(u) = procfs::usage(w.pid) else { return };
        w.peak.lock().unwrap_or_else(|e| e.into_inner()).add(u);
        if Instant::now() >= next_line {
            next_line += PROGRESS_EVERY;
            let started = w.started.lock().unwrap_or_else(|e| e.into_inner()).len();
            let done = w.done.get();
            let now = (Instant::now(), cpu(w.pid), cpu(me));
            let over = now.0 - last.0;
            let tick = Tick {
                t_s: w.clock.elapsed().as_secs_f64(),
                started,
                done,
                ringlb_fds: u.fds,
                ringlb_cpu_pct: cpu_pct(now.1.saturating_sub(last.1), over),
                driver_cpu_pct: cpu_pct(now.2.saturating_sub(last.2), over),
            };
            last = now;
            eprintln!(
                "[{:>5.1}s] streams {started} started, {done} done, {} open | ringlb {} fds, {} MiB, \
                 {:.0}% cpu | driver {:.0}% cpu",
                tick.t_s,
                started.saturating_sub(done),
                u.fds,
                u.rss_kib >> 10,
                tick.ringlb_cpu_pct,
                tick.driver_cpu_pct
            );
            w.timeline
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tick);
        }
    }
}

fn cpu(pid: u32) -> u64 {
    procfs::cpu_ticks(pid).unwrap_or(0)
}

/// After the streams: waits (up to `within`) for descriptors to be back at the baseline and RSS
/// within `rss_tolerance_kib` of it. The last reading, and how long it took.
pub async fn settle(
    pid: u32,
    base: Usage,
    rss_tolerance_kib: u64,
    within: Duration,
) -> Result<(Usage, Duration), SoakError> {
    let start = Instant::now();
    loop {
        let u = procfs::usage(pid)?;
        let back = u.fds == base.fds && u.rss_kib <= base.rss_kib + rss_tolerance_kib;
        if back || start.elapsed() >= within {
            return Ok((u, start.elapsed()));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// ringlb's CPU over an idle window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleCpu {
    pub window_s: f64,
    pub cpu_s: f64,
    /// Percent of one core.
    pub pct: f64,
}

pub async fn idle_cpu(pid: u32, window: Duration) -> Result<IdleCpu, SoakError> {
    let t0 = procfs::cpu_ticks(pid)?;
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let t1 = procfs::cpu_ticks(pid)?;
    let window_s = start.elapsed().as_secs_f64();
    let cpu_s = t1.saturating_sub(t0) as f64 / USER_HZ;
    Ok(IdleCpu {
        window_s,
        cpu_s,
        pct: cpu_s / window_s * 100.0,
    })
}

/// First-wave streams ready, out of `want`, before `deadline`.
pub async fn wait_ready(
    ready: &std::sync::atomic::AtomicUsize,
    changed: &tokio::sync::Notify,
    want: usize,
    deadline: Instant,
) -> usize {
    loop {
        let n = ready.load(Ordering::Acquire);
        if n >= want {
            return n;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || tokio::time::timeout(left, changed.notified())
                .await
                .is_err()
        {
            return ready.load(Ordering::Acquire);
        }
    }
}
