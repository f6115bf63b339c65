//! `ringlb-soak`: soak-and-fault test of the ringlb binary (see `ringlb::tools::soak`). Exit
//! status 0 when every check passed, 1 when a check failed (the report says which), 2 for bad
//! arguments, 3 when the soak could not run at all.

use std::process::ExitCode;

use clap::Parser;
use ringlb::tools::soak::{run_blocking, SoakArgs};

fn main() -> ExitCode {
    let args = SoakArgs::parse();
    let opts = match args.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ringlb-soak: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match run_blocking(&opts).map_err(anyhow::Error::from) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringlb-soak: the soak could not run: {e:#}");
            return ExitCode::from(3);
        }
    };
    print!("{report}");
    if let Some(path) = &opts.json {
        if let Err(e) = report.write_json(path).map_err(anyhow::Error::from) {
            eprintln!("ringlb-soak: {e:#}");
            return ExitCode::from(3);
        }
        println!("json        {}", path.display());
    }
    if report.failed_checks.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "ringlb-soak: FAIL: check(s) failed: {}",
            report.failed_checks.join(", ")
        );
        ExitCode::FAILURE
    }
}
