//! The interactive side of `ringlb demo`: banner, built-in load, table redraw, Ctrl-C.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tools::load::{self, Limit, LoadOptions, Mode as LoadMode};

use super::{render, DemoError, DemoFleet, DemoOptions};

/// How the demo runs beyond what it starts.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Concurrent SSE clients of the built-in load; 0 = none (drive it yourself).
    pub clients: usize,
    /// Stop after this long; `None` = until Ctrl-C.
    pub duration: Option<Duration>,
}

/// Runs the demo until Ctrl-C (or `run.duration`), redrawing the table once a second.
pub fn run(opts: &DemoOptions, run: &RunOptions, stop: Arc<AtomicBool>) -> Result<(), DemoError> {
    let fleet = DemoFleet::start(opts)?;
    let addr = fleet.addr().unwrap_or(opts.listen);
    println!("ringlb demo: balancer on {addr} (least_connections), 3 mock GPU backends:");
    for b in &fleet.backends {
        println!(
            "  {:<14} {}  capacity {}",
            b.name(),
            b.addr(),
            b.stats().capacity()
        );
    }
    println!("\nTry it:");
    println!(
        "  curl -N http://{addr}/v1/completions -H 'content-type: application/json' \\\n       -d '{{\"prompt\":\"hello\",\"max_tokens\":20,\"stream\":true}}'"
    );
    println!("  WebSocket: ws://{addr}/v1/stream, send {{\"prompt\":\"hi\",\"max_tokens\":20}}");
    println!(
        "  cargo run --release --bin ringlb-load -- websocket --target {addr} --connections 8 --duration 10s --backend-header"
    );
    if run.clients > 0 {
        println!(
            "\nBuilt-in load: {} concurrent SSE streams (--clients 0 to turn it off).",
            run.clients
        );
    }
    println!("Ctrl-C stops everything.\n");

    let load_stop = Arc::new(AtomicBool::new(false));
    let load_thread =
        (run.clients > 0).then(|| spawn_load(addr.to_string(), run.clients, load_stop.clone()));

    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut prev = fleet.rows();
    let mut last = Instant::now();
    let mut drawn_lines = 0;
    while !stop.load(Ordering::Acquire) && run.duration.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let rows = fleet.rows();
        let table = render(&rows, &prev, last.elapsed().as_secs_f64());
        let mut out = std::io::stdout().lock();
        if tty && drawn_lines > 0 {
            let _ = write!(out, "\x1b[{drawn_lines}A\x1b[J");
        }
        let _ = write!(out, "{table}");
        let _ = out.flush();
        drawn_lines = table.lines().count();
        prev = rows;
        last = Instant::now();
    }
    load_stop.store(true, Ordering::Release);
    if let Some(t) = load_thread {
        let _ = t.join();
    }
    fleet.shutdown();
    println!("demo stopped");
    Ok(())
}

fn spawn_load(
    target: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut opts = LoadOptions::new(
            LoadMode::Sse,
            target,
            clients,
            Limit::Duration(Duration::from_secs(365 * 24 * 3600)),
        );
        opts.max_tokens = 64;
        opts.backend_header = Some("x-backend".to_string());
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the built-in load");
                return;
            }
        };
        let until = async move {
            while !stop.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if let Err(e) = rt.block_on(load::run_until(opts, until)) {
            tracing::warn!(error = %e, "built-in load failed");
        }
    })
}
