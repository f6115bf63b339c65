//! Medians per (metric, target) over the rounds, ratios against HAProxy, and the failures
//! behind each figure. Must never drop a run with failures from the count: a figure built on
//! failed requests is shown with them.

use std::collections::BTreeMap;

use super::metrics::{run_metrics, Metric};
use super::model::{Run, Target, Workload};

/// A metric's median for one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub median: f64,
    /// Runs (rounds) behind the median.
    pub runs: usize,
}

/// Failed requests (or idle connections lost) out of those attempted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub failed: u64,
    pub attempted: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub cells: BTreeMap<(Metric, Target), Cell>,
    pub failures: BTreeMap<(Workload, Target), Failures>,
}

/// The median, or `None` for no values. An even count averages the middle two.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// `value / haproxy`, when HAProxy's figure is positive (a ratio to zero or to a negative
/// number says nothing).
pub fn ratio(value: f64, haproxy: f64) -> Option<f64> {
    (haproxy > 0.0 && value.is_finite()).then(|| value / haproxy)
}

impl Summary {
    pub fn build(runs: &[Run], fleet_min_active: u64) -> Summary {
        let mut values: BTreeMap<(Metric, Target), Vec<f64>> = BTreeMap::new();
        let mut failures: BTreeMap<(Workload, Target), Failures> = BTreeMap::new();
        for run in runs {
            for (metric, v) in run_metrics(run, fleet_min_active) {
                values.entry((metric, run.target)).or_default().push(v);
            }
            let f = failures.entry((run.workload, run.target)).or_default();
            f.failed += run.failures();
            f.attempted += run.client.requests;
        }
        add_paired(runs, fleet_min_active, &mut values);
        let cells = values
            .into_iter()
            .filter_map(|(key, mut v)| {
                let runs = v.len();
                median(&mut v).map(|median| (key, Cell { median, runs }))
            })
            .collect();
        Summary { cells, failures }
    }

    pub fn value(&self, metric: Metric, target: Target) -> Option<f64> {
        self.cells.get(&(metric, target)).map(|c| c.median)
    }

    /// The median's ratio to HAProxy's, for figures where a ratio means something.
    pub fn ratio_vs_haproxy(&self, metric: Metric, target: Target) -> Option<f64> {
        if !metric.has_ratio() {
            return None;
        }
        ratio(
            self.value(metric, target)?,
            self.value(metric, Target::Haproxy)?,
        )
    }

    pub fn failures(&self, workload: Workload, target: Target) -> Failures {
        self.failures
            .get(&(workload, target))
            .copied()
            .unwrap_or_default()
    }
}

/// Added latency: each proxy's round-trip percentile minus direct's in the same round, so that
/// the noise a round shares with its baseline cancels out.
fn add_paired(runs: &[Run], min_active: u64, values: &mut BTreeMap<(Metric, Target), Vec<f64>>) {
    let mut by_round: BTreeMap<(u32, Target), Vec<(Metric, f64)>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.workload == Workload::Small) {
        by_round
            .entry((run.round, run.target))
            .or_default()
            .extend(run_metrics(run, min_active));
    }
    let find = |list: &[(Metric, f64)], m: Metric| list.iter().find(|(k, _)| *k == m).map(|p| p.1);
    for ((round, target), list) in &by_round {
        let Some(direct) = by_round.get(&(*round, Target::Direct)) else {
            continue;
        };
        if *target == Target::Direct {
            continue;
        }
        for (raw, added) in [
            (Metric::SmallP50Us, Metric::AddedP50Us),
            (Metric::SmallP99Us, Metric::AddedP99Us),
        ] {
            if let Some((t, d)) = find(list, raw).zip(find(direct, raw)) {
                values.entry((added, *target)).or_default().push(t - d);
            }
        }
    }
}
