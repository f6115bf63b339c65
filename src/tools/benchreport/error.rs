//! Errors of the benchmark report generator, each naming the file or line at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a client report: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Table {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot draw the chart {path}: {reason}")]
    Chart { path: PathBuf, reason: String },
}
