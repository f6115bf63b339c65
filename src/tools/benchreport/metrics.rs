//! The figures the report shows and how each is computed from one run: throughput and CPU
//! from the client report and the /proc readings, memory per held connection, and how evenly
//! the fleet's active streams follow capacity.
//!
//! Must never produce a figure from missing or empty input: such a run yields no value for
//! that metric rather than a zero.

use std::collections::BTreeMap;

use super::model::{FleetSample, Run, Workload};

/// A figure of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    BulkGbps,
    BulkCpuPerGb,
    ConnsPerSec,
    CpuUsPerConn,
    SmallP50Us,
    SmallP99Us,
    /// Target's p50 minus direct's, paired by round.
    AddedP50Us,
    AddedP99Us,
    IdleBytesPerConn,
    FleetTtftP99Ms,
    FleetImbalancePct,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::BulkGbps,
        Metric::BulkCpuPerGb,
        Metric::ConnsPerSec,
        Metric::CpuUsPerConn,
        Metric::SmallP50Us,
        Metric::SmallP99Us,
        Metric::AddedP50Us,
        Metric::AddedP99Us,
        Metric::IdleBytesPerConn,
        Metric::FleetTtftP99Ms,
        Metric::FleetImbalancePct,
    ];

    pub fn workload(self) -> Workload {
        match self {
            Metric::BulkGbps | Metric::BulkCpuPerGb => Workload::Bulk,
            Metric::ConnsPerSec | Metric::CpuUsPerConn => Workload::Connrate,
            Metric::SmallP50Us | Metric::SmallP99Us | Metric::AddedP50Us | Metric::AddedP99Us => {
                Workload::Small
            }
            Metric::IdleBytesPerConn => Workload::Idle,
            Metric::FleetTtftP99Ms | Metric::FleetImbalancePct => Workload::Fleet,
        }
    }

    /// What the figure is, with its unit, for the table.
    pub fn label(self) -> &'static str {
        match self {
            Metric::BulkGbps => "throughput, GB/s",
            Metric::BulkCpuPerGb => "proxy CPU-seconds per GB",
            Metric::ConnsPerSec => "connections/s",
            Metric::CpuUsPerConn => "proxy CPU-us per connection",
            Metric::SmallP50Us => "round trip p50, us",
            Metric::SmallP99Us => "round trip p99, us",
            Metric::AddedP50Us => "added p50 vs direct, us",
            Metric::AddedP99Us => "added p99 vs direct, us",
            Metric::IdleBytesPerConn => "proxy RSS per held connection, bytes",
            Metric::FleetTtftP99Ms => "time to first token p99, ms",
            Metric::FleetImbalancePct => "active streams off capacity share, %",
        }
    }

    /// A short name for the chart.
    pub fn short(self) -> &'static str {
        match self {
            Metric::BulkGbps => "GB/s",
            Metric::BulkCpuPerGb => "CPU/GB",
            Metric::ConnsPerSec => "conn/s",
            Metric::CpuUsPerConn => "CPU/conn",
            Metric::SmallP50Us => "p50",
            Metric::SmallP99Us => "p99",
            Metric::AddedP50Us => "added p50",
            Metric::AddedP99Us => "added p99",
            Metric::IdleBytesPerConn => "RSS/conn",
            Metric::FleetTtftP99Ms => "TTFT p99",
            Metric::FleetImbalancePct => "imbalance",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::BulkGbps | Metric::ConnsPerSec)
    }

    /// Whether a ratio to HAProxy's figure means something. The fleet's imbalance is a small
    /// percentage near zero for every balancer, where a ratio only magnifies noise.
    pub fn has_ratio(self) -> bool {
        self != Metric::FleetImbalancePct
    }
}

/// The figures one run yields (paired metrics are computed by the summary).
/// `fleet_min_active`: fleet samples with fewer active streams in total are ramp-up or
/// drain and are left out of the balance figure.
pub fn run_metrics(run: &Run, fleet_min_active: u64) -> Vec<(Metric, f64)> {
    let c = &run.client;
    let mut out = Vec::new();
    let mut put = |m: Metric, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.push((m, v));
        }
    };
    let positive = |v: f64| Some(v).filter(|v| *v > 0.0);
    match run.workload {
        Workload::Bulk => {
            let gb = positive(c.bytes as f64 / 1e9);
            put(
                Metric::BulkGbps,
                gb.zip(positive(c.duration_s)).map(|(g, d)| g / d),
            );
            put(
                Metric::BulkCpuPerGb,
                run.cpu_s().zip(gb).map(|(s, g)| s / g),
            );
        }
        Workload::Connrate => {
            let conns = positive(c.ok as f64);
            put(
                Metric::ConnsPerSec,
                conns.zip(positive(c.duration_s)).map(|(n, d)| n / d),
            );
            put(
                Metric::CpuUsPerConn,
                run.cpu_s().zip(conns).map(|(s, n)| s * 1e6 / n),
            );
        }
        Workload::Small if c.request.count > 0 => {
            put(Metric::SmallP50Us, Some(c.request.p50));
            put(Metric::SmallP99Us, Some(c.request.p99));
        }
        Workload::Small => {}
        Workload::Idle => {
            let grew = run
                .rss_before_kb
                .zip(run.rss_held_kb)
                .map(|(b, h)| (h as f64 - b as f64) * 1024.0);
            let held = run.held.map(|h| h as f64).and_then(positive);
            put(Metric::IdleBytesPerConn, grew.zip(held).map(|(g, h)| g / h));
        }
        Workload::Fleet => {
            if c.ttft.count > 0 {
                put(Metric::FleetTtftP99Ms, Some(c.ttft.p99 / 1e3));
            }
            put(
                Metric::FleetImbalancePct,
                imbalance(&run.samples, fleet_min_active),
            );
        }
    }
    out
}

/// Readings taken at the same instant, by backend: (capacity, active streams).
fn instants(samples: &[FleetSample]) -> BTreeMap<u64, BTreeMap<&str, (u64, u64)>> {
    let mut by_time: BTreeMap<u64, BTreeMap<&str, (u64, u64)>> = BTreeMap::new();
    for s in samples {
        by_time
            .entry(s.t_ms)
            .or_default()
            .insert(&s.backend, (s.capacity, s.running + s.waiting));
    }
    by_time
}

/// Shares of active streams at one instant vs capacity shares: `None` when too few streams
/// were active (ramp-up, drain) or a backend is missing from the reading.
fn instant_shares(
    reading: &BTreeMap<&str, (u64, u64)>,
    backends: usize,
    min_active: u64,
) -> Option<Vec<(f64, f64)>> {
    let active: u64 = reading.values().map(|(_, a)| a).sum();
    let capacity: u64 = reading.values().map(|(c, _)| c).sum();
    if reading.len() != backends || active == 0 || active < min_active || capacity == 0 {
        return None;
    }
    Some(
        reading
            .values()
            .map(|&(c, a)| (a as f64 / active as f64, c as f64 / capacity as f64))
            .collect(),
    )
}

fn backend_count(samples: &[FleetSample]) -> usize {
    let mut names: Vec<&str> = samples.iter().map(|s| s.backend.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// How far active streams are from following capacity: at each instant, the share of
/// streams that would have to move for every backend's share of streams to equal its share
/// of capacity (total variation distance, 0 = exact, 100 = all on the wrong backend); the
/// median over instants, in percent.
pub fn imbalance(samples: &[FleetSample], min_active: u64) -> Option<f64> {
    let backends = backend_count(samples);
    let mut distances: Vec<f64> = instants(samples)
        .values()
        .filter_map(|r| instant_shares(r, backends, min_active))
        .map(|shares| 50.0 * shares.iter().map(|(a, c)| (a - c).abs()).sum::<f64>())
        .collect();
    super::summary::median(&mut distances)
}

/// Mean share of active streams per backend over the instants `imbalance` uses, with the
/// backend's capacity: backend -> (capacity, mean share in percent).
pub fn mean_shares(samples: &[FleetSample], min_active: u64) -> BTreeMap<String, (u64, f64)> {
    let backends = backend_count(samples);
    let mut sums: BTreeMap<String, (u64, f64, u32)> = BTreeMap::new();
    for reading in instants(samples).values() {
        let Some(shares) = instant_shares(reading, backends, min_active) else {
            continue;
        };
        for ((name, (cap, _)), (share, _)) in reading.iter().zip(shares) {
            let e = sums.entry(name.to_string()).or_insert((*cap, 0.0, 0));
            e.1 += share * 100.0;
            e.2 += 1;
        }
    }
    sums.into_iter()
        .map(|(name, (cap, sum, n))| (name, (cap, sum / f64::from(n))))
        .collect()
}
