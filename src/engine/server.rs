//! Starting and supervising the workers: bind every listener (see `bind`: port 0 is resolved
//! once, then shared by all workers; a fixed port another process holds is refused), size the connection limit to the descriptors the process may open,
//! build the backend table and the engine policy, start one thread per worker and wait until
//! each driver is ready (or return the first reason one could not be). The I/O driver (io_uring,
//! or epoll where io_uring cannot be used) is chosen once, before the first worker starts.
//!
//! Supervision: every worker reports when it exits. The first one that fails (its ring could
//! not be trusted) or panics stops all the others, and [`Server::join`] returns its error, so
//! the process exits non-zero with the reason instead of serving on with a dead core.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::balance::{Registry, SharedTable, Table};
use crate::config::Config;

use super::admit::Admission;
use super::bind::{self, StartOptions};
use super::drain::Control;
use super::handover::{Armed, EngineHandover};
use super::io_choice::{self, IoChoice};
use super::limits;
use super::mailbox::Mailbox;
use super::observe::ListenerBook;
use super::observe::Observer;
use super::policy::{table_spec, Policy};
use super::queue::QueueShared;
use super::reload::{EngineReload, POOL_HEADROOM};
use super::stats::{StatsSnapshot, WorkerStats};
use super::time::Clock;
use super::uring::Waker;
use super::worker::{Worker, WorkerParts};
use super::EngineError;

type Exit = (usize, Result<(), EngineError>);

/// A running balancer: its workers, listeners and backend table.
pub struct Server {
    listeners: Arc<ListenerBook>,
    table: Arc<SharedTable>,
    registry: Arc<Registry>,
    pub(super) control: Arc<Control>,
    pub(super) wakers: Vec<Waker>,
    pub(super) threads: Vec<JoinHandle<()>>,
    pub(super) exits: mpsc::Receiver<Exit>,
    stats: Vec<Arc<WorkerStats>>,
    queues: Arc<QueueShared>,
    pub(super) admission: Arc<Admission>,
    max_connections: u32,
    policy: Arc<ArcSwap<Policy>>,
    mailbox: Arc<Mailbox>,
    workers: usize,
    armed: Arc<Armed>,
    io: Arc<IoChoice>,
    #[cfg(test)]
    pub(super) faults: Vec<Arc<std::sync::atomic::AtomicU8>>,
}

impl Server {
    /// [`Server::start_with`] on the system clock.
    pub fn start(config: &Config) -> Result<Server, EngineError> {
        Self::start_with(config, Clock::system())
    }

    /// [`Server::start_with_options`] with timers on `clock`.
    pub fn start_with(config: &Config, clock: Clock) -> Result<Server, EngineError> {
        let options = StartOptions {
            clock,
            ..StartOptions::default()
        };
        Self::start_with_options(config, options)
    }

    /// Binds every listener (refusing a fixed port another process listens on, unless
    /// `options.probe_ports` is off), builds the backend table and starts
    /// `config.runtime.workers` workers whose timers run on `options.clock`.
    pub fn start_with_options(
        config: &Config,
        options: StartOptions,
    ) -> Result<Server, EngineError> {
        let StartOptions {
            clock,
            probe_ports,
            inherited,
        } = options;
        let io = Arc::new(io_choice::choose(&config.runtime)?);
        if io.fallback {
            tracing::warn!(io = %io.driver, reason = %io.reason, "io_uring unavailable; running on epoll");
        }
        let registry = Arc::new(Registry::new());
        let table = Arc::new(SharedTable::new(Table::build(
            &table_spec(config),
            &registry,
        )));
        let policy = Arc::new(ArcSwap::from_pointee(Policy::from_config(config)));
        let workers = config.runtime.workers.max(1);
        let max_connections = limits::connection_limit(config, workers);
        let listener_limits: Vec<u32> =
            config.listeners.iter().map(|l| l.max_connections).collect();
        let admission = Arc::new(Admission::new(max_connections, &listener_limits));
        let (per_worker, bound) = bind::worker_listeners(config, workers, probe_ports, inherited)?;
        let armed = Arc::new(Armed::default());

        let queues = QueueShared::new(config.pools.len() + POOL_HEADROOM);
        let control = Arc::new(Control::default());
        let mailbox = Arc::new(Mailbox::new(workers));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (exit_tx, exits) = mpsc::channel::<Exit>();
        let mut threads = Vec::new();
        let mut stats = Vec::new();
        #[cfg(test)]
        let mut faults = Vec::new();
        let rt = config.runtime.clone();
        for (id, listeners) in per_worker.into_iter().enumerate() {
            let ws = Arc::new(WorkerStats::default());
            stats.push(ws.clone());
            let (table, worker_stop, ready, exit) = (
                table.cache(),
                control.clone(),
                ready_tx.clone(),
                exit_tx.clone(),
            );
            let (mailbox_w, armed_w, io_w) = (mailbox.clone(), armed.clone(), io.clone());
            let (rt, policy, queues, admission, clock) = (
                rt.clone(),
                policy.clone(),
                queues.clone(),
                admission.clone(),
                clock.clone(),
            );
            #[cfg(test)]
            let fault = {
                let f = Arc::new(std::sync::atomic::AtomicU8::new(0));
                faults.push(f.clone());
                f
            };
            let spawn = std::thread::Builder::new()
                .name(format!("ringlb-w{id}"))
                .spawn(move || {
                    if rt.pin_workers {
                        pin_to_core(id);
                    }
                    let ring = match io_w.build(&rt) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok((id, ring.waker())));
                    drop(ready);
                    let parts = WorkerParts {
                        id,
                        ring,
                        listeners,
                        table,
                        policy,
                        queues,
                        admission,
                        control: worker_stop,
                        mailbox: mailbox_w,
                        stats: ws,
                        clock,
                        armed: armed_w,
                        #[cfg(test)]
                        fault,
                    };
                    let result = catch_unwind(AssertUnwindSafe(|| Worker::new(parts).run()))
                        .unwrap_or(Err(EngineError::WorkerPanicked(id)));
                    let _ = exit.send((id, result));
                });
            match spawn {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Workers already started would serve the port forever: stop them first.
                    control.stop.store(true, Ordering::Release);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(EngineError::Thread(e));
                }
            }
        }
        drop((ready_tx, exit_tx));
        let mut server = Server {
            listeners: Arc::new(ListenerBook::new(bound)),
            table,
            registry,
            control,
            wakers: Vec::new(),
            threads,
            exits,
            stats,
            queues: QueueShared::new(0),
            admission,
            max_connections,
            policy,
            mailbox,
            workers,
            armed,
            io: io.clone(),
            #[cfg(test)]
            faults,
        };
        let mut by_id: Vec<(usize, Waker)> = Vec::with_capacity(workers);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok((id, waker))) => {
                    server.wakers.push(waker.clone());
                    clock.attach(waker.clone());
                    by_id.push((id, waker));
                }
                Ok(Err(e)) => {
                    server.stop_workers();
                    return Err(e);
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
        tracing::info!(
            workers,
            max_connections,
            io = %io.driver,
            io_reason = %io.reason,
            listeners = ?server.listeners.snapshot(),
            "ringlb started"
        );
        Ok(server)
    }

    /// The address listener `name` is bound to (port 0 in the config is resolved here).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.addr(name)
    }

    /// Listeners accepting now (those a reload added included), with their addresses.
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.snapshot()
    }

    /// The I/O driver the workers run on, and why.
    pub fn io(&self) -> &IoChoice {
        &self.io
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
        let mut total = self
            .stats
            .iter()
            .map(|s| s.snapshot())
            .fold(StatsSnapshot::default(), |a, b| a + b);
        total.admitted = u64::from(self.admission.admitted());
        total
    }

    /// Client connections the server holds at most (`runtime.max_connections`, or what the
    /// descriptor limit allows).
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Clients waiting in pool `pool`'s queue right now (all workers).
    pub fn queue_len(&self, pool: usize) -> u32 {
        self.queues.waiting(pool)
    }

    /// How long dispatched clients waited in pool queues, in microseconds.
    pub fn queue_wait_histogram(&self) -> hdrhistogram::Histogram<u64> {
        self.queues.wait_us.lock().clone()
    }

    /// A cheap, cloneable read-only view for the control plane (admin API, metrics).
    pub fn observer(&self) -> Observer {
        Observer {
            table: self.table.clone(),
            registry: self.registry.clone(),
            stats: self.stats.clone(),
            queues: self.queues.clone(),
            admission: self.admission.clone(),
            listeners: self.listeners.clone(),
            max_connections: self.max_connections,
            io: self.io.clone(),
        }
    }

    /// What handing this process's sockets over to a new one needs of the engine.
    pub fn handover(&self) -> EngineHandover {
        EngineHandover {
            mailbox: self.mailbox.clone(),
            wakers: self.wakers.clone(),
            control: self.control.clone(),
            stopper: self.stopper(),
        }
    }

    /// Waits until every worker has its accepts in the kernel (one loop turn each; they are
    /// woken for it); false if that took longer than `within`.
    pub fn wait_accepting(&self, within: std::time::Duration) -> bool {
        for w in &self.wakers {
            w.wake();
        }
        self.armed.wait(self.workers, within)
    }

    /// What a config reload needs of the engine (see `reload`).
    pub fn reloader(&self) -> EngineReload {
        EngineReload {
            policy: self.policy.clone(),
            queues: self.queues.clone(),
            admission: self.admission.clone(),
            mailbox: self.mailbox.clone(),
            wakers: self.wakers.clone(),
            workers: self.workers,
            listeners: self.listeners.clone(),
        }
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
