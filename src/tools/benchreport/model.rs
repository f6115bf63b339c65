//! The data of a benchmark run as the report sees it: targets, workloads, the client's figures
//! and the proxy readings. Plain values; must never do I/O.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What a workload ran against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Direct,
    Ringlb,
    /// ringlb on its epoll driver (`RINGLB_IO=epoll`).
    RinglbEpoll,
    Haproxy,
    Nginx,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Direct,
        Target::Ringlb,
        Target::RinglbEpoll,
        Target::Haproxy,
        Target::Nginx,
    ];
    pub const PROXIES: [Target; 4] = [
        Target::Ringlb,
        Target::RinglbEpoll,
        Target::Haproxy,
        Target::Nginx,
    ];

    pub fn parse(text: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.key() == text)
    }

    /// The name used in file names and `runs.tsv`.
    pub fn key(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Ringlb => "ringlb",
            Target::RinglbEpoll => "ringlb-epoll",
            Target::Haproxy => "haproxy",
            Target::Nginx => "nginx",
        }
    }

    /// The name shown to readers.
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Ringlb => "ringlb",
            Target::RinglbEpoll => "ringlb (epoll)",
            Target::Haproxy => "HAProxy",
            Target::Nginx => "NGINX",
        }
    }
}

/// The five workloads of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    Bulk,
    Connrate,
    Small,
    Idle,
    Fleet,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Bulk,
        Workload::Connrate,
        Workload::Small,
        Workload::Idle,
        Workload::Fleet,
    ];

    pub fn parse(text: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.key() == text)
    }

    pub fn key(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Connrate => "connrate",
            Workload::Small => "small",
            Workload::Idle => "idle",
            Workload::Fleet => "fleet",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Connrate => "connection rate",
            Workload::Small => "small messages",
            Workload::Idle => "idle streams",
            Workload::Fleet => "fleet",
        }
    }
}

/// The part of a client's JSON report (ringlb-load, or wrk through scripts/wrk-json.lua) the
/// report uses. Times in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClientReport {
    pub duration_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorTotal,
    pub bytes: u64,
    pub request: Latency,
    pub ttft: Latency,
    pub closed_early: u64,
    pub backends: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorTotal {
    pub total: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
}

/// One reading of a fleet backend's active streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSample {
    pub t_ms: u64,
    pub backend: String,
    pub capacity: u64,
    pub running: u64,
    pub waiting: u64,
}

/// One run of one workload against one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub workload: Workload,
    pub target: Target,
    pub round: u32,
    pub client: ClientReport,
    /// Proxy CPU time during the run (none for direct).
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub rss_before_kb: Option<u64>,
    pub rss_held_kb: Option<u64>,
    /// Idle connections established through the proxy when `rss_held_kb` was read.
    pub held: Option<u64>,
    pub samples: Vec<FleetSample>,
}

impl Run {
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.cpu_user_s? + self.cpu_sys_s?)
    }

    /// Requests that failed, plus idle connections the proxy dropped early.
    pub fn failures(&self) -> u64 {
        self.client.errors.total + self.client.closed_early
    }
}
