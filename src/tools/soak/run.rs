//! One soak run from start to verdict: backends up, ringlb started on them and quiet, the
//! baseline read, the streams drawn from the seed and run (the first wave held open together,
//! the rest as slots free up), the kills, then descriptors, memory and idle CPU after the load,
//! ringlb stopped, every stream judged. Must never leave ringlb or a backend running, and never
//! let a stream go unaccounted (one that has not ended at the deadline is counted as hung).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use super::args::Options;
use super::backend::{self, Backend};
use super::checks::{self, Inputs};
use super::client::{run_stream, ClientCtx};
use super::dist::draw_stream;
use super::error::SoakError;
use super::kills::{self, Done, KillPlan};
use super::monitor::{self, Peak, Watch};
use super::report::{KillLine, Report, RingLbFigures};
use super::ringlb::{config_text, RingLb};
use super::shared::Registry;
use super::tally::Tally;
use super::verdict::{judge, StreamCheck, KILL_ATTRIBUTION_MS};

/// Descriptors kept free in the driver (and in ringlb, which inherits the same limit) beyond two
/// per open stream: listeners, rings, the runtime, logs, and ringlb's sockets of streams that
/// just ended that it has not closed yet (a stream's slot is reused as soon as both of the
/// driver's sockets are closed).
const FD_RESERVE: u64 = 512;
/// Connects in flight at once, so a burst does not overflow ringlb's accept queues.
const CONNECTS_IN_FLIGHT: usize = 256;
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

pub async fn run(opts: &Options) -> Result<Report, SoakError> {
    let clock = Instant::now();
    let (open_limit, nofile) = open_limit(opts.streams)?;
    let dir = work_dir(opts)?;
    println!(
        "ringlb-soak: seed {} (replay with --seed {}); {} streams ({} open at most), {} backends, work dir {}",
        opts.seed, opts.seed, opts.streams, open_limit, opts.backends, dir.display()
    );
    let registry = Arc::new(Registry::default());
    let (go_tx, go_rx) = watch::channel(false);
    let bctx = Arc::new(backend::Ctx {
        registry: registry.clone(),
        clock,
        no_progress: opts.no_progress,
        go: go_rx.clone(),
    });
    let fleet = (0..opts.backends)
        .map(|i| {
            Backend::start(i, bctx.clone()).map_err(|source| SoakError::BindBackend {
                index: i,
                addr: "127.0.0.1:0".parse().expect("literal address"),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let addrs: Vec<_> = fleet.iter().map(|b| b.addr).collect();
    let config = config_text(opts.workers, &addrs);
    let mut lb = RingLb::start(&opts.ringlb, &dir, &config, START_WITHIN).await?;
    let baseline = monitor::baseline(lb.pid, QUIET_WITHIN).await?;
    eprintln!(
        "ringlb pid {} listening on {}: baseline {} fds, {} MiB",
        lb.pid,
        lb.addr,
        baseline.fds,
        baseline.rss_kib >> 10
    );

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let headers: Vec<_> = (0..opts.streams as u64)
        .map(|id| draw_stream(&mut rng, id, opts.max_size))
        .collect();
    let cctx = Arc::new(ClientCtx {
        registry: registry.clone(),
        clock,
        target: lb.addr,
        no_progress: opts.no_progress,
        ready: AtomicUsize::new(0),
        ready_changed: Notify::new(),
        go: go_rx,
    });
    let open = Arc::new(Semaphore::new(open_limit));
    let (rec_tx, mut rec_rx) = mpsc::unbounded_channel();
    let spawner = {
        let (open, ctx, headers) = (open.clone(), cctx.clone(), headers.clone());
        let connecting = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
        tokio::spawn(async move {
            for h in headers {
                let slot = open.clone().acquire_owned().await.expect("never closed");
                let conn = connecting
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed");
                let (ctx, tx) = (ctx.clone(), rec_tx.clone());
                let first = (h.id as usize) < open_limit;
                tokio::spawn(async move {
                    let rec = run_stream(ctx, h, first, conn).await;
                    drop(slot);
                    let _ = tx.send(rec);
                });
            }
        })
    };
    let deadline = clock + opts.deadline;
    let ready = monitor::wait_ready(&cctx.ready, &cctx.ready_changed, open_limit, deadline).await;
    let all_open = super::procfs::usage(lb.pid)?;
    eprintln!(
        "[{:>5.1}s] {ready} streams open at once: ringlb {} fds, {} MiB; go",
        clock.elapsed().as_secs_f64(),
        all_open.fds,
        all_open.rss_kib >> 10
    );
    let load_start = Instant::now();
    let _ = go_tx.send(true);

    let done = Arc::new(Done::default());
    let peak = Arc::new(Mutex::new(Peak::default()));
    peak.lock().unwrap_or_else(|e| e.into_inner()).add(all_open);
    let sampler = tokio::spawn(monitor::sample(Watch {
        pid: lb.pid,
        clock,
        total: opts.streams,
        open_limit,
        open: open.clone(),
        done: done.clone(),
        peak: peak.clone(),
    }));
    let kill_plan = KillPlan {
        kills: opts.kills,
        streams: opts.streams,
        down_time: opts.down_time,
        seed: opts.seed,
        clock,
    };
    let killer = tokio::spawn(kills::schedule(fleet, kill_plan, done.clone()));

    let mut records = Vec::with_capacity(opts.streams);
    let mut died = None;
    while records.len() < opts.streams {
        match tokio::time::timeout_at(deadline.into(), rec_rx.recv()).await {
            Ok(Some(rec)) => {
                records.push(rec);
                done.add();
            }
            Ok(None) | Err(_) => break,
        }
        if died.is_none() {
            died = lb.exited().map(|s| s.to_string());
        }
    }
    let load_s = load_start.elapsed().as_secs_f64();
    done.finish();
    spawner.abort();
    let (fleet, events) = killer.await.unwrap_or_else(|_| (Vec::new(), Vec::new()));
    sampler.abort();
    eprintln!(
        "[{:>5.1}s] streams over; waiting for ringlb to settle",
        clock.elapsed().as_secs_f64()
    );

    let rss_tol = opts.rss_tolerance_mib << 10;
    let (after, settle_wait) = monitor::settle(lb.pid, baseline, rss_tol, opts.settle).await?;
    let idle = monitor::idle_cpu(lb.pid, opts.idle_window).await?;
    let log_summary = lb.log_summary();
    let stop = lb.stop(STOP_WITHIN).await;
    drop(fleet);

    let marks: Vec<_> = events.iter().map(|e| e.mark()).collect();
    let mut tally = Tally::new(opts.streams);
    let mut seen = vec![false; opts.streams];
    for rec in &records {
        seen[rec.header.id as usize] = true;
        tally.add(rec, &judge(rec, &marks));
    }
    for h in headers.iter().filter(|h| !seen[h.id as usize]) {
        tally.add_hung(h);
    }
    let kills = events
        .iter()
        .map(|e| {
            let killed = tally.killed_on.get(&e.backend).copied().unwrap_or(0);
            let window = e.at_ms..=e.at_ms + KILL_ATTRIBUTION_MS;
            let early = tally
                .cut_before_header_at
                .iter()
                .filter(|t| window.contains(t))
                .count();
            KillLine {
                event: e.clone(),
                streams_cut: killed + early as u64,
            }
        })
        .collect::<Vec<_>>();
    let exit_error = match &stop {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("exited with {s}")),
        Err(e) => Some(e.clone()),
    };
    let inputs = Inputs {
        streams: opts.streams as u64,
        failed_streams: tally.failed_of(StreamCheck::Streams),
        failed_hashes: tally.failed_of(StreamCheck::Hashes),
        failed_resets: tally.failed_of(StreamCheck::ResetPropagation),
        hung: tally.hung,
        bad_connections: registry.unmatched().bad,
        baseline,
        after,
        settle_s: settle_wait.as_secs_f64(),
        rss_tolerance_kib: rss_tol,
        idle_pct: idle.pct,
        idle_max_pct: opts.idle_cpu_max,
        died,
        exit_error,
        restart_errors: events
            .iter()
            .filter_map(|e| e.restart_error.clone())
            .collect(),
        kills_planned: opts.kills,
        kills_done: events.len(),
    };
    let checks = checks::evaluate(&inputs);
    let failed_checks = checks::failed(&checks);
    let peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Report {
        verdict: if failed_checks.is_empty() {
            "PASS"
        } else {
            "FAIL"
        },
        failed_checks,
        seed: opts.seed,
        options: opts.clone(),
        open_limit,
        nofile_limit: nofile,
        first_wave: ready,
        load_s,
        elapsed_s: clock.elapsed().as_secs_f64(),
        streams: tally,
        kills,
        ringlb: RingLbFigures {
            binary: opts.ringlb.clone(),
            work_dir: dir,
            log: lb.log_path.clone(),
            baseline,
            all_open,
            peak,
            after,
            settle_s: settle_wait.as_secs_f64(),
            idle,
            exit: match stop {
                Ok(s) => s.to_string(),
                Err(e) => e,
            },
            log_summary,
        },
        unmatched: registry.unmatched(),
        checks,
    })
}
