//! What the `ringlb-load` binary does after parsing: run with Ctrl-C as the stop signal, print
//! the report, write the JSON file. Must never exit non-zero because requests failed (they are
//! printed prominently instead); only a run that could not happen is an error.

use std::path::Path;

use super::error::LoadError;
use super::options::LoadOptions;
use super::report::Report;

/// Runs `opts` on a new multi-thread runtime until done or Ctrl-C, prints the report to stdout
/// and writes it as JSON to `json` when given.
pub fn run_cli(opts: LoadOptions, json: Option<&Path>) -> Result<Report, LoadError> {
    let runtime = super::build_runtime()?;
    let stop = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C; run to the end");
            std::future::pending::<()>().await;
        }
    };
    let report = runtime.block_on(super::run_until(opts, stop))?;
    print!("{report}");
    if let Some(path) = json {
        write_json(&report, path)?;
    }
    if report.errors.total > 0 {
        eprintln!(
            "ringlb-load: {} of {} requests FAILED (see ERRORS above)",
            report.errors.total, report.requests
        );
    }
    Ok(report)
}

pub fn write_json(report: &Report, path: &Path) -> Result<(), LoadError> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).map_err(|source| LoadError::WriteJson {
        path: path.to_path_buf(),
        source,
    })
}
