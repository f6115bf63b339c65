//! `ringlb-bench-report`: writes the benchmark report (markdown and SVG) from the raw runs that
//! `scripts/bench.sh` collects (see `ringlb::tools::benchreport`), and prints the verdict per
//! target.
//! Exit status 1 if the report cannot be made; a missed target is reported, not an error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ringlb::tools::benchreport::{self, markdown::figure};

/// Turn the raw runs of scripts/bench.sh into the markdown report and the SVG chart.
#[derive(Parser)]
#[command(name = "ringlb-bench-report", version)]
struct Args {
    /// Directory with meta.tsv, runs.tsv and the per-run files.
    #[arg(long)]
    raw: PathBuf,
    /// Markdown report to write.
    #[arg(long)]
    markdown: PathBuf,
    /// SVG chart to write.
    #[arg(long)]
    svg: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match benchreport::generate(&args.raw, &args.markdown, &args.svg) {
        Ok(goals) => {
            for g in goals {
                let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), figure);
                println!(
                    "{:<13} {} ({}): ringlb {}, HAProxy {}",
                    g.verdict.label(),
                    g.goal.what,
                    g.goal.describe(),
                    show(g.ringlb),
                    show(g.haproxy)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringlb-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
