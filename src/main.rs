//! The `ringlb` command: run the balancer, check a config, run the demo or a mock backend.
//! Errors reach the operator here as one clear line; a bad config exits with code 2.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use ringlb::config;
use ringlb::engine::Server;

/// Exit code for a config that does not validate (and for bad arguments, as clap does).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "ringlb",
    version,
    about = "Layer-4 TCP/WebSocket balancer for GPU inference fleets, on io_uring"
)]
struct Cli {
    /// Log filter (tracing env-filter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the balancer until SIGINT or SIGTERM.
    Run {
        /// Config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a config file and print a summary (exit 0), or the error (exit 2).
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match cli.command {
        Command::Check { config } => match config::load(&config) {
            Ok(cfg) => {
                println!("{}: ok", config.display());
                println!("{}", cfg.summary());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run { config } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match run(&cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(cfg: &config::Config) -> anyhow::Result<()> {
    let mut server = Server::start(cfg).context("cannot start ringlb")?;
    for (name, addr) in server.listeners() {
        tracing::info!(listener = %name, %addr, "listening");
    }
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let stopper = server.stopper();
    std::thread::Builder::new()
        .name("ringlb-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "stopping");
                stopper.stop();
            }
        })
        .context("cannot start the signal thread")?;
    server.join().context("worker failed")?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
