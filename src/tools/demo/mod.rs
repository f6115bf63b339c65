//! `ringlb demo`: three mock GPU backends of different capacity on loopback, the balancer in
//! front of them (least-connections, weights matching capacity), optionally a built-in load,
//! and a table redrawn once a second. Uses the same engine and config types as `ringlb run`.
//!
//! Must never need a file or a network beyond loopback, and must stop everything on Ctrl-C.

mod run;
mod view;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::{Backend, Balance, Config, Listener, Pool, Runtime};
use crate::engine::{EngineError, Server};
use crate::tools::fleet::{FleetError, MockBackend, MockOptions, Mode};

pub use run::{run, RunOptions};
pub use view::{render, BackendRow};

/// Address the demo balancer listens on, the one the README's curl example uses.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The demo fleet: (name, capacity). Capacities 1:2:3 like a mix of smaller and larger cards;
/// weights follow them so least-connections fills each in proportion.
pub const FLEET: [(&str, usize); 3] = [
    ("gpu-a-small", 8),
    ("gpu-b-medium", 16),
    ("gpu-c-large", 24),
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("mock backend: {0}")]
    Fleet(#[from] FleetError),
    #[error("balancer: {0}")]
    Engine(#[from] EngineError),
}

/// What the demo starts.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub workers: usize,
    pub tokens_per_sec: f64,
    pub ttft: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: DEFAULT_LISTEN,
            workers: 0,
            tokens_per_sec: 40.0,
            ttft: Duration::from_millis(60),
        }
    }
}

/// A running demo: the mock backends and the balancer in front of them.
pub struct DemoFleet {
    pub backends: Vec<MockBackend>,
    pub server: Server,
}

impl DemoFleet {
    pub fn start(opts: &DemoOptions) -> Result<DemoFleet, DemoError> {
        let mut backends = Vec::new();
        for (name, capacity) in FLEET {
            backends.push(MockBackend::spawn(MockOptions {
                name: name.to_string(),
                mode: Mode::Inference,
                tokens_per_sec: opts.tokens_per_sec,
                ttft: opts.ttft,
                capacity,
                ..MockOptions::default()
            })?);
        }
        let config = demo_config(opts, &backends);
        let server = Server::start(&config)?;
        Ok(DemoFleet { backends, server })
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.listener_addr("llm")
    }

    /// One row per backend: the balancer's active count next to the backend's own counters.
    pub fn rows(&self) -> Vec<BackendRow> {
        let table = self.server.table().load();
        let snap = table.snapshot(crate::clock::now_ms());
        self.backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let balancer_active = snap
                    .first()
                    .and_then(|p| p.backends.get(i))
                    .map(|s| s.active)
                    .unwrap_or(0);
                BackendRow {
                    name: b.name().to_string(),
                    capacity: b.stats().capacity(),
                    balancer_active,
                    stats: b.stats().snapshot(),
                }
            })
            .collect()
    }

    pub fn shutdown(self) {
        let DemoFleet { backends, server } = self;
        if let Err(e) = server.shutdown() {
            tracing::warn!(error = %e, "balancer did not stop cleanly");
        }
        for b in backends {
            b.shutdown();
        }
    }
}

/// The config `ringlb demo` runs: one listener, one least-connections pool over the fleet.
pub fn demo_config(opts: &DemoOptions, backends: &[MockBackend]) -> Config {
    let workers = if opts.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.workers
    };
    Config {
        runtime: Runtime {
            workers,
            io: crate::config::IoMode::Auto,
            pin_workers: false,
            ring_entries: crate::config::DEFAULT_RING_ENTRIES,
            buffer_size: crate::config::DEFAULT_BUFFER_SIZE,
            buffer_count: crate::config::DEFAULT_BUFFER_COUNT,
            max_unsent: crate::config::DEFAULT_MAX_UNSENT,
            max_connections: 0,
            // The demo draws its own table of streams.
            access_log: false,
            access_log_interval: std::time::Duration::ZERO,
            shutdown_timeout: crate::config::DEFAULT_SHUTDOWN_TIMEOUT,
            handover_socket: None,
            peek_memory_max: crate::config::DEFAULT_PEEK_MEMORY_MAX,
            dns_servers: Vec::new(),
        },
        listeners: vec![Listener {
            name: "llm".to_string(),
            bind: opts.listen,
            pool: 0,
            backlog: crate::config::DEFAULT_BACKLOG,
            max_connections: 0,
        }],
        pools: vec![Pool {
            name: "gpu".to_string(),
            balance: Balance::LeastConnections,
            connect_timeout: crate::config::DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: crate::config::DEFAULT_IDLE_TIMEOUT,
            half_close_timeout: crate::config::DEFAULT_HALF_CLOSE_TIMEOUT,
            retries: crate::config::DEFAULT_RETRIES,
            backends: backends
                .iter()
                .map(|b| Backend {
                    addr: b.addr(),
                    weight: (b.stats().capacity() / 8).max(1) as u32,
                    max_connections: 0,
                    tier: crate::config::DEFAULT_TIER,
                })
                .collect(),
            names: Vec::new(),
            hash_key: crate::config::HashKey::ClientIp,
            session_key: None,
            send_proxy: None,
            hash_balance_factor: crate::config::DEFAULT_HASH_BALANCE_FACTOR,
            latency_decay: crate::config::DEFAULT_LATENCY_DECAY,
            slow_start: crate::config::DEFAULT_SLOW_START,
            queue_size: crate::config::DEFAULT_QUEUE_SIZE,
            queue_timeout: crate::config::DEFAULT_QUEUE_TIMEOUT,
            queue_when_all_down: false,
            drain_timeout: crate::config::DEFAULT_DRAIN_TIMEOUT,
            max_connection_age: None,
            max_connection_age_jitter: crate::config::DEFAULT_MAX_CONNECTION_AGE_JITTER,
            passive: crate::config::PassiveHealth::default(),
            health: None,
            engine_metrics: None,
            failover: crate::config::Failover::default(),
            count: crate::config::Count::Streams,
            least_load: crate::config::LeastLoad::default(),
        }],
        admin: None,
        // The demo's one listener never peeks.
        routes: vec![std::sync::Arc::new(crate::route::Routes::passthrough(0))],
        digest: String::new(),
    }
}
