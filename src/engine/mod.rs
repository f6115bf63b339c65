//! The data plane: thread-per-core workers, each with one io_uring ring, its own SO_REUSEPORT
//! listening sockets and a slab of connections, relaying bytes unchanged between clients and
//! the backends the shared table picks.
//!
//! [`Server::start`] sets everything up and returns once every worker's ring is ready (or the
//! first reason it could not be). The engine must never take a lock on the per-connection path
//! and never hold `unsafe` outside `uring`.

mod conn;
mod connect;
mod queue;
mod relay;
mod socket;
mod stats;
mod timer;
mod token;
mod uring;
mod worker;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use slab::Slab;

use crate::balance::{
    BackendSpec, HealthPolicy, PoolSpec, Registry, SharedTable, StrategyKind, Table, TableSpec,
};
use crate::config::{Balance, Config, HashKey};

pub use stats::StatsSnapshot;
pub use uring::UringError;

use stats::WorkerStats;
use worker::{Worker, WorkerListener};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Uring(#[from] UringError),
    #[error("listener {name:?}: cannot listen on {addr}: {source}")]
    Listen {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("worker {0} panicked")]
    WorkerPanicked(usize),
    #[error("worker {0} exited before it was ready")]
    WorkerLost(usize),
}

/// A running balancer: its workers, listeners and backend table.
pub struct Server {
    listeners: Vec<(String, SocketAddr)>,
    table: Arc<SharedTable>,
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
    wakers: Vec<uring::Waker>,
    threads: Vec<JoinHandle<Result<(), EngineError>>>,
    stats: Vec<Arc<WorkerStats>>,
    queues: Arc<queue::QueueShared>,
}

impl Server {
    /// Binds every listener (port 0 is resolved once, then shared by all workers), builds the
    /// backend table and starts `config.runtime.workers` workers.
    pub fn start(config: &Config) -> Result<Server, EngineError> {
        let registry = Arc::new(Registry::new());
        let table = Arc::new(SharedTable::new(Table::build(
            &table_spec(config),
            &registry,
        )));
        let workers = config.runtime.workers.max(1);
        let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::new();
        for l in &config.listeners {
            let listen_err = |addr, source| EngineError::Listen {
                name: l.name.clone(),
                addr,
                source,
            };
            let first = socket::listener(l.bind, l.backlog).map_err(|e| listen_err(l.bind, e))?;
            let addr = socket::local_addr(&first).map_err(|e| listen_err(l.bind, e))?;
            let mut fds: Vec<OwnedFd> = vec![first];
            for _ in 1..workers {
                fds.push(socket::listener(addr, l.backlog).map_err(|e| listen_err(addr, e))?);
            }
            for (w, fd) in fds.into_iter().enumerate() {
                per_worker[w].push(WorkerListener {
                    fd,
                    pool: l.pool,
                    armed: false,
                    retry_at: 0,
                });
            }
            bound.push((l.name.clone(), addr));
        }

        let queues = queue::QueueShared::new(config.pools.len());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::new();
        let mut stats = Vec::new();
        let pin = config.runtime.pin_workers;
        let rt = config.runtime.clone();
        for (id, listeners) in per_worker.into_iter().enumerate() {
            let ws = Arc::new(WorkerStats::default());
            stats.push(ws.clone());
            let (table, worker_stop, ready) = (table.cache(), stop.clone(), ready_tx.clone());
            let rt = rt.clone();
            let queues_shared = queues.clone();
            let spawn = std::thread::Builder::new()
                .name(format!("ringlb-w{id}"))
                .spawn(move || {
                    if pin {
                        pin_to_core(id);
                    }
                    let ring =
                        match uring::Ring::new(rt.ring_entries, rt.buffer_count, rt.buffer_size) {
                            Ok(r) => r,
                            Err(e) => {
                                let _ = ready.send(Err(e));
                                return Ok(());
                            }
                        };
                    let _ = ready.send(Ok((id, ring.waker())));
                    drop(ready);
                    let worker = Worker {
                        id,
                        ring,
                        conns: Slab::new(),
                        listeners,
                        table,
                        timers: Default::default(),
                        now: 0,
                        now_us: 0,
                        queues: Default::default(),
                        queues_shared,
                        gens: Vec::new(),
                        starved: Vec::new(),
                        max_unsent: rt.max_unsent,
                        stop: worker_stop,
                        stopping: false,
                        stats: ws,
                    };
                    worker.run()
                });
            match spawn {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Workers already started would serve the port forever: stop them first.
                    stop.store(true, Ordering::Release);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(EngineError::Thread(e));
                }
            }
        }
        drop(ready_tx);
        let mut server = Server {
            listeners: bound,
            table,
            registry,
            stop,
            wakers: Vec::new(),
            threads,
            stats,
            queues: queue::QueueShared::new(0),
        };
        let mut by_id: Vec<(usize, uring::Waker)> = Vec::with_capacity(workers);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok((id, waker))) => {
                    server.wakers.push(waker.clone());
                    by_id.push((id, waker));
                }
                Ok(Err(e)) => {
                    server.stop_workers();
                    return Err(e.into());
                }
                Err(_) => {
                    server.stop_workers();
                    return Err(EngineError::WorkerLost(server.wakers.len()));
                }
            }
        }
        // Indexed by worker id: a worker wakes all but itself.
        by_id.sort_by_key(|(id, _)| *id);
        let _ = queues
            .wakers
            .set(by_id.into_iter().map(|(_, w)| w).collect());
        server.queues = queues;
        tracing::info!(workers, listeners = ?server.listeners, "ringlb started");
        Ok(server)
    }

    /// The address listener `name` is bound to (port 0 in the config is resolved here).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// The backend table every worker picks from.
    pub fn table(&self) -> &Arc<SharedTable> {
        &self.table
    }

    /// Where backend counts live across table rebuilds (reload).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Counters summed over all workers.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats
            .iter()
            .map(|s| s.snapshot())
            .fold(StatsSnapshot::default(), |a, b| a + b)
    }

    /// Clients waiting in pool `pool`'s queue right now (all workers).
    pub fn queue_len(&self, pool: usize) -> u32 {
        self.queues.waiting(pool)
    }

    /// How long dispatched clients waited in pool queues, in microseconds.
    pub fn queue_wait_histogram(&self) -> hdrhistogram::Histogram<u64> {
        self.queues.wait_us.lock().clone()
    }

    /// A handle that can ask the server to stop from another thread (signal handling).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
            wakers: self.wakers.clone(),
        }
    }

    /// Stops accepting, closes every connection and waits for the workers to finish.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.stopper().stop();
        self.join()
    }

    /// Waits until the server is stopped (by a [`Stopper`]).
    pub fn join(&mut self) -> Result<(), EngineError> {
        let mut result = Ok(());
        for (id, t) in self.threads.drain(..).enumerate() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(EngineError::WorkerPanicked(id)),
            }
        }
        result
    }

    fn stop_workers(&mut self) {
        self.stopper().stop();
        let _ = self.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_workers();
        }
    }
}

/// Asks a running server to stop; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    wakers: Vec<uring::Waker>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        for w in &self.wakers {
            w.wake();
        }
    }
}

/// What the backend table needs from the config.
pub fn table_spec(config: &Config) -> TableSpec {
    TableSpec {
        pools: config
            .pools
            .iter()
            .map(|p| PoolSpec {
                name: p.name.clone(),
                strategy: match p.balance {
                    Balance::LeastConnections => StrategyKind::LeastConnections,
                    Balance::RoundRobin => StrategyKind::RoundRobin,
                    Balance::PowerOfTwo => StrategyKind::PowerOfTwo,
                    Balance::LeastLatency => StrategyKind::LeastLatency,
                    Balance::Random => StrategyKind::Random,
                    Balance::Hash => StrategyKind::Hash,
                },
                connect_timeout: p.connect_timeout,
                idle_timeout: p.idle_timeout,
                retries: p.retries,
                backends: p
                    .backends
                    .iter()
                    .map(|b| BackendSpec {
                        addr: b.addr,
                        weight: b.weight,
                        max_connections: b.max_connections,
                        tier: b.tier,
                    })
                    .collect(),
                hash_key: match p.hash_key {
                    HashKey::ClientIp => crate::balance::HashKey::ClientIp,
                    HashKey::ClientIpPort => crate::balance::HashKey::ClientIpPort,
                },
                hash_balance_factor: p.hash_balance_factor,
                latency_decay: p.latency_decay,
                slow_start: p.slow_start,
                queue_size: p.queue_size,
                queue_timeout: p.queue_timeout,
                max_connection_age: p.max_connection_age,
                max_connection_age_jitter: p.max_connection_age_jitter,
            })
            .collect(),
        health: HealthPolicy::default(),
    }
}

fn pin_to_core(id: usize) {
    let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) else {
        tracing::warn!(worker = id, "cannot list CPUs; worker not pinned");
        return;
    };
    let core = cores[id % cores.len()];
    if !core_affinity::set_for_current(core) {
        tracing::warn!(
            worker = id,
            core = core.id,
            "cannot pin worker to CPU; running unpinned"
        );
    }
}
