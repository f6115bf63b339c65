//! One soak run from start to the facts: backends up, ringlb started on them and quiet, the
//! baseline read, the streams launched (the first wave held open together), the kills, then
//! descriptors, memory and idle CPU after the load, ringlb stopped. [`super::assemble`] turns
//! the facts into the report. Must never leave ringlb or a backend running, and never let a
//! stream go unaccounted (one that has not ended at the deadline is counted as hung).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::args::Options;
use super::assemble::{assemble, Facts};
use super::backend::{self, Backend};
use super::client::ClientCtx;
use super::error::SoakError;
use super::kills::{self, Done, KillPlan, KillTiming};
use super::monitor::{self, Peak, Watch};
use super::procfs;
use super::report::Report;
use super::ringlb::{config_text, RingLb};
use super::shared::Registry;
use super::streams::{launch, Launch};

/// Descriptors kept free in the driver (and in ringlb, which inherits the same limit) beyond two
/// per open stream: listeners, rings, the runtime, logs, and ringlb's sockets of streams that
/// just ended that it has not closed yet (a stream's slot is reused as soon as both of the
/// driver's sockets are closed).
const FD_RESERVE: u64 = 512;
/// Longest ringlb may take to log `listening` and accept.
const START_WITHIN: Duration = Duration::from_secs(15);
/// Longest the baseline waits for ringlb's descriptor count to hold still.
const QUIET_WITHIN: Duration = Duration::from_secs(10);
/// Longest ringlb may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Runs the soak on a new tokio runtime.
pub fn run_blocking(opts: &Options) -> Result<Report, SoakError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ringlb-soak")
        .build()
        .map_err(SoakError::Runtime)?
        .block_on(run(opts))
}

fn work_dir(opts: &Options) -> Result<PathBuf, SoakError> {
    let dir = opts.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringlb-soak-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|source| SoakError::WorkDir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Streams that may be open at once: two descriptors each, in the driver and in ringlb. Raises
/// the soft open files limit to the hard one first (ringlb inherits it).
fn open_limit(streams: usize) -> Result<(usize, u64), SoakError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let read = || {
        getrlimit(Resource::RLIMIT_NOFILE)
            .map_err(|e| SoakError::InvalidOptions(format!("cannot read RLIMIT_NOFILE: {e}")))
    };
    let (soft, hard) = read()?;
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let (soft, _) = read()?;
    if soft <= FD_RESERVE + 2 {
        return Err(SoakError::InvalidOptions(format!(
            "open files limit {soft} is too low: raise `ulimit -n`"
        )));
    }
    let limit = ((soft - FD_RESERVE) / 2).min(streams as u64) as usize;
    Ok((limit, soft))
}

fn start_fleet(n: usize, ctx: &Arc<backend::Ctx>) -> Result<Vec<Backend>, SoakError> {
    (0..n)
        .map(|i| {
            Backend::start(i, ctx.clone()).map_err(|source| SoakError::BindBackend {
                index: i,
                addr: "127.0.0.1:0".parse().expect("literal address"),
                source,
            })
        })
        .collect()
}

fn secs(clock: Instant) -> f64 {
    clock.elapsed().as_secs_f64()
}

pub async fn run(opts: &Options) -> Result<Report, SoakError> {
    let clock = Instant::now();
    let (open_limit, nofile) = open_limit(opts.streams)?;
    let dir = work_dir(opts)?;
    super::snapshot::set_dir(dir.clone());
    let tcp_before = super::netstat::tcp_ext();
    println!(
        "ringlb-soak: seed {} (replay with --seed {}); {} streams open at once, for {:?} more; \
         {} backends; work dir {}",
        opts.seed,
        opts.seed,
        open_limit,
        opts.duration,
        opts.backends,
        dir.display()
    );
    let registry = Arc::new(Registry::default());
    let (go_tx, go_rx) = watch::channel(false);
    let bctx = Arc::new(backend::Ctx {
        registry: registry.clone(),
        clock,
        no_progress: opts.no_progress,
        go: go_rx.clone(),
    });
    let fleet = start_fleet(opts.backends, &bctx)?;
    let addrs: Vec<_> = fleet.iter().map(|b| b.addr).collect();
    let config = config_text(opts.workers, &addrs, opts.no_progress);
    let mut lb = RingLb::start(&opts.ringlb, &dir, &config, START_WITHIN).await?;
    let baseline = monitor::baseline(lb.pid, QUIET_WITHIN).await?;
    eprintln!(
        "ringlb pid {} listening on {}: baseline {} fds, {} MiB",
        lb.pid,
        lb.addr,
        baseline.fds,
        baseline.rss_kib >> 10
    );

    let cctx = Arc::new(ClientCtx {
        registry: registry.clone(),
        clock,
        target: lb.addr,
        no_progress: opts.no_progress,
        ready: AtomicUsize::new(0),
        ready_changed: Notify::new(),
        go: go_rx.clone(),
    });
    let mut launcher = launch(Launch {
        ctx: cctx.clone(),
        seed: opts.seed,
        max_size: opts.max_size,
        open_limit,
        total: opts.duration.is_zero().then_some(opts.streams),
        duration: opts.duration,
        go: go_rx,
    });
    let first_wave = monitor::wait_ready(
        &cctx.ready,
        &cctx.ready_changed,
        open_limit,
        clock + opts.deadline,
    )
    .await;
    let all_open = procfs::usage(lb.pid)?;
    eprintln!(
        "[{:>5.1}s] {first_wave} streams open at once: ringlb {} fds, {} MiB; go",
        secs(clock),
        all_open.fds,
        all_open.rss_kib >> 10
    );
    let go_at = Instant::now();
    let _ = go_tx.send(true);

    let done = Arc::new(Done::default());
    let peak = Arc::new(Mutex::new(Peak::default()));
    let timeline = Arc::new(Mutex::new(Vec::new()));
    peak.lock().unwrap_or_else(|e| e.into_inner()).add(all_open);
    let sampler = tokio::spawn(monitor::sample(Watch {
        pid: lb.pid,
        clock,
        started: launcher.started.clone(),
        done: done.clone(),
        peak: peak.clone(),
        timeline: timeline.clone(),
    }));
    let timing = if opts.duration.is_zero() {
        KillTiming::Done {
            streams: opts.streams,
        }
    } else {
        KillTiming::Time {
            from: go_at,
            over: opts.duration,
        }
    };
    let kill_plan = KillPlan {
        kills: opts.kills,
        timing,
        down_time: opts.down_time,
        seed: opts.seed,
        clock,
    };
    let killer = tokio::spawn(kills::schedule(fleet, kill_plan, done.clone()));
    let deadline = go_at + opts.duration + opts.deadline;
    let records = launcher.collect(&done, deadline).await;
    let died = lb.exited().map(|s| s.to_string());
    let load_s = go_at.elapsed().as_secs_f64();
    done.finish();
    let (fleet, kills) = killer.await.unwrap_or_default();
    sampler.abort();
    eprintln!(
        "[{:>5.1}s] streams over; waiting for ringlb to settle",
        secs(clock)
    );

    let rss_tolerance_kib = opts.rss_tolerance_kib(baseline.rss_kib);
    let (after, settle, idle) = if died.is_some() {
        let idle = monitor::IdleCpu {
            window_s: 0.0,
            cpu_s: 0.0,
            pct: 0.0,
        };
        (procfs::Usage::default(), Duration::ZERO, idle)
    } else {
        let (after, settle) =
            monitor::settle(lb.pid, baseline, rss_tolerance_kib, opts.settle).await?;
        (
            after,
            settle,
            monitor::idle_cpu(lb.pid, opts.idle_window).await?,
        )
    };
    let leftover_sockets = if died.is_none() && after.fds != baseline.fds {
        let ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        procfs::socket_states(lb.pid, lb.addr.port(), &ports)?
    } else {
        Default::default()
    };
    let log_summary = lb.log_summary();
    let kernel_tcp = super::netstat::delta(&tcp_before, &super::netstat::tcp_ext());
    let stop = lb.stop(STOP_WITHIN).await;
    drop(fleet);
    let peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    let timeline = std::mem::take(&mut *timeline.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(assemble(Facts {
        opts: opts.clone(),
        open_limit,
        nofile,
        first_wave,
        load_s,
        elapsed_s: secs(clock),
        started: launcher.started(),
        records,
        kills,
        unmatched: registry.unmatched(),
        binary: opts.ringlb.clone(),
        work_dir: dir,
        log: lb.log_path.clone(),
        baseline,
        all_open,
        peak,
        after,
        settle_s: settle.as_secs_f64(),
        leftover_sockets,
        timeline,
        rss_tolerance_kib,
        idle,
        died,
        stop,
        log_summary,
        kernel_tcp,
    }))
}
