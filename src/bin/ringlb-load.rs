//! `ringlb-load`: load generator for ringlb (see `ringlb::tools::load`). Parses the command line,
//! sets up logging and hands over; exit status 2 for bad arguments, 1 if the run could not
//! happen, 0 otherwise (failed requests are reported, not turned into an exit status).

use std::process::ExitCode;

use clap::Parser;
use ringlb::tools::load::{run_cli, LoadArgs};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = LoadArgs::parse();
    let opts = args.to_options().unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run_cli(opts, args.json.as_deref()).map_err(anyhow::Error::from) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            // The message already carries its cause; the Debug form would add a backtrace.
            eprintln!("ringlb-load: {e}");
            ExitCode::FAILURE
        }
    }
}
