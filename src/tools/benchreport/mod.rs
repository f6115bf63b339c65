//! The benchmark report (`ringlb-bench-report`): reads the raw runs that `scripts/bench.sh`
//! collects, takes medians per workload and target, compares ringlb with HAProxy against the
//! performance targets, and writes the markdown report and the SVG chart.
//!
//! Must never run a benchmark itself nor present a figure it did not read from a run: missing
//! figures are shown as missing, failed requests as failures.

pub mod chart;
pub mod error;
pub mod goals;
pub mod input;
pub mod markdown;
pub mod metrics;
pub mod model;
pub mod summary;

use std::path::Path;

pub use error::BenchReportError;
pub use goals::{GoalResult, Verdict, GOALS};
pub use metrics::Metric;
pub use model::{Run, Target, Workload};
pub use summary::Summary;

/// Fleet samples count towards balance once at least half the configured streams are active:
/// below that the load is ramping up or draining and shares say little.
pub fn fleet_min_active(raw: &input::RawResults) -> u64 {
    raw.meta("fleet_streams")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(1, |n| (n / 2).max(1))
}

/// Reads `raw_dir`, writes the report to `markdown` and the chart to `svg`, and returns the
/// verdict on each target.
pub fn generate(
    raw_dir: &Path,
    markdown: &Path,
    svg: &Path,
) -> Result<Vec<GoalResult>, BenchReportError> {
    let raw = input::read_dir(raw_dir)?;
    let min_active = fleet_min_active(&raw);
    let summary = Summary::build(&raw.runs, min_active);
    let goals = goals::evaluate_all(&summary);
    let text = markdown::render(&raw, &summary, &goals, min_active);
    std::fs::write(markdown, text).map_err(|source| BenchReportError::Write {
        path: markdown.to_path_buf(),
        source,
    })?;
    let title = format!(
        "ringlb vs HAProxy vs NGINX, {} (median of {} rounds)",
        raw.meta("date").unwrap_or("undated"),
        raw.meta("rounds").unwrap_or("?")
    );
    chart::draw(&summary, &title, svg)?;
    Ok(goals)
}

#[cfg(test)]
mod tests;
