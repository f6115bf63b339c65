//! Launching the run's streams and collecting their records. The first wave (as many streams as
//! may be open at once) is connected and held until `go`; after it, a new stream starts
//! whenever one ends: until the run has drawn `--streams` in all (no `--duration`), or for the
//! whole `--duration` (a sustained soak at full concurrency). Streams are drawn from the seed in
//! id order, so a replay draws the same streams; how many fit in a duration depends on speed.
//! Must never start a stream beyond the open limit, nor lose one: every started stream is
//! either collected or listed as hung.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use super::client::{run_stream, ClientCtx};
use super::dist::draw_stream;
use super::header::Header;
use super::kills::Done;
use super::record::StreamRecord;

/// Connects in flight at once: well within ringlb's accept queues (4096 per worker), and enough
/// for a busy driver to refill freed slots quickly.
const CONNECTS_IN_FLIGHT: usize = 1024;

pub struct Launch {
    pub ctx: Arc<ClientCtx>,
    pub seed: u64,
    pub max_size: u64,
    /// Streams open at once at most; the first wave is this many.
    pub open_limit: usize,
    /// `Some(n)`: stop after n streams in all. `None`: keep going for `duration` after `go`.
    pub total: Option<usize>,
    pub duration: Duration,
    pub go: watch::Receiver<bool>,
}

pub struct Launcher {
    /// Every stream started so far, in id order.
    pub started: Arc<Mutex<Vec<Header>>>,
    spawner: JoinHandle<()>,
    records: mpsc::UnboundedReceiver<StreamRecord>,
}

pub fn launch(l: Launch) -> Launcher {
    let started = Arc::new(Mutex::new(Vec::new()));
    let open = Arc::new(Semaphore::new(l.open_limit));
    let (tx, records) = mpsc::unbounded_channel();
    let spawner = tokio::spawn(spawn_all(l, started.clone(), open, tx));
    Launcher {
        started,
        spawner,
        records,
    }
}

async fn spawn_all(
    mut l: Launch,
    started: Arc<Mutex<Vec<Header>>>,
    open: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<StreamRecord>,
) {
    let connecting = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut rng = StdRng::seed_from_u64(l.seed);
    let mut go_at: Option<Instant> = None;
    for id in 0u64.. {
        let first = (id as usize) < l.open_limit;
        if l.total.is_some_and(|t| id as usize >= t) {
            return;
        }
        if !first && go_at.is_none() {
            let _ = l.go.wait_for(|go| *go).await;
            go_at = Some(Instant::now());
        }
        let over = |go_at: Option<Instant>| {
            l.total.is_none() && go_at.is_some_and(|at| at.elapsed() >= l.duration)
        };
        if over(go_at) {
            return;
        }
        let slot = open.clone().acquire_owned().await.expect("never closed");
        if over(go_at) {
            return;
        }
        let conn = connecting
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let h = draw_stream(&mut rng, id, l.max_size);
        started.lock().unwrap_or_else(|e| e.into_inner()).push(h);
        let (ctx, tx) = (l.ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let rec = run_stream(ctx, h, first, conn).await;
            drop(slot);
            let _ = tx.send(rec);
        });
    }
}

impl Launcher {
    /// Collects records until every started stream has ended or `deadline` passes.
    pub async fn collect(&mut self, done: &Done, deadline: Instant) -> Vec<StreamRecord> {
        let mut records = Vec::new();
        while let Ok(Some(rec)) =
            tokio::time::timeout_at(deadline.into(), self.records.recv()).await
        {
            records.push(rec);
            done.add();
        }
        self.spawner.abort();
        records
    }

    pub fn started(&self) -> Vec<Header> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
