//! The `ringlb` command: run the balancer, check a config, run the demo or a mock backend.
//! Errors reach the operator here as one clear line; a bad config exits with code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};

use ringlb::config;
use ringlb::tools::{demo, fleet};

/// Exit code for a config that does not validate, or names an address that cannot be bound
/// (and for bad arguments, as clap does).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "ringlb",
    version,
    about = "Layer-4 TCP/WebSocket balancer for GPU inference fleets, on io_uring (or epoll)"
)]
struct Cli {
    /// Log filter (tracing env-filter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    /// Log line format: `text` for people, `json` (one object per line) for log pipelines.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
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
        /// Take the listening sockets of the ringlb serving the config's
        /// `runtime.handover_socket` (binary upgrade); it then drains and exits by itself.
        #[arg(long, conflicts_with = "take_over_if_running")]
        take_over: bool,
        /// ``--take-over` if a ringlb serves `runtime.handover_socket`, else a plain start (for
        /// a service unit: a first start, a reboot and an upgrade alike).
        #[arg(long)]
        take_over_if_running: bool,
    },
    /// Validate a config file and try each address it binds; print a summary (exit 0), or the
    /// error (exit 2).
    Check {
        #[arg(short, long)]
        config: PathBuf,
        /// Check only the file, not the binds (a config meant for another host).
        #[arg(long)]
        no_bind: bool,
    },
    /// Start three mock GPU backends and the balancer in front of them, with a live table.
    Demo {
        /// Where the demo balancer listens.
        #[arg(long, default_value_t = demo::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Concurrent SSE clients of the built-in load (0 = none; drive it with curl).
        #[arg(long, default_value_t = 36)]
        clients: usize,
        /// Stop after this long (e.g. "30s"); default: until Ctrl-C.
        #[arg(long, value_parser = config::parse_duration)]
        duration: Option<Duration>,
        /// Balancer workers (0 = one per core).
        #[arg(long, default_value_t = 0)]
        workers: usize,
    },
    /// Run one mock backend (inference server or raw TCP mode) until SIGINT/SIGTERM.
    MockBackend(MockArgs),
}

#[derive(clap::Args)]
struct MockArgs {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long, default_value = "mock")]
    name: String,
    #[arg(long, value_enum, default_value = "inference")]
    mode: MockMode,
    /// Bytes per response for `source` and `respond`.
    #[arg(long, default_value_t = 1 << 20)]
    bytes: u64,
    #[arg(long, default_value_t = fleet::DEFAULT_TOKENS_PER_SEC)]
    tokens_per_sec: f64,
    /// Time to first token, e.g. "50ms".
    #[arg(long, value_parser = config::parse_duration, default_value = "50ms")]
    ttft: Duration,
    /// Concurrent generations (like max-num-seqs); more wait in a queue.
    #[arg(long, default_value_t = fleet::DEFAULT_CAPACITY)]
    capacity: usize,
    /// Runtime threads of the mock.
    #[arg(long, default_value_t = fleet::DEFAULT_WORKER_THREADS)]
    threads: usize,
    /// `/health` answers 503 for this long after start (a model loading), e.g. "30s".
    #[arg(long, value_parser = config::parse_duration, default_value = "0s")]
    warmup: Duration,
    /// `/health` answers after this delay, e.g. "2s".
    #[arg(long, value_parser = config::parse_duration, default_value = "0s")]
    health_delay: Duration,
    /// Series names of `/metrics`: those of vLLM, SGLang or TGI.
    #[arg(long, value_enum, default_value = "vllm")]
    metrics_flavor: MetricsFlavorArg,
    /// Phantom streams that hold slots and KV and generate tokens without any client (load
    /// that does not pass through the balancer); each restarts as soon as it ends.
    #[arg(long, default_value_t = 0)]
    external_load: usize,
    /// Run this many times slower: TTFT and the time between tokens are multiplied by it.
    #[arg(long, default_value_t = 1.0)]
    slowdown: f64,
    /// Completion length of requests without `max_tokens` (and of phantom streams):
    /// `fixed:N` or `lognormal:median=M,sigma=S[,max=N]`.
    #[arg(long, default_value_t = fleet::TokenDist::default())]
    max_tokens_dist: fleet::TokenDist,
    /// KV-cache budget in tokens; a request reserves prompt + max_tokens and waits until
    /// that fits. Default: unlimited.
    #[arg(long)]
    kv_tokens: Option<u64>,
    /// KV tokens of a request whose body has no prompt (and of each phantom stream).
    #[arg(long, default_value_t = fleet::DEFAULT_PROMPT_TOKENS)]
    prompt_tokens: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MetricsFlavorArg {
    Vllm,
    Sglang,
    Tgi,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MockMode {
    Inference,
    Echo,
    Source,
    Respond,
    Sink,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo draws a table on stdout; only warnings belong beside it unless asked.
    let quiet_demo = matches!(cli.command, Command::Demo { .. }) && cli.log == "info";
    init_logging(if quiet_demo { "warn" } else { &cli.log }, cli.log_format);
    match cli.command {
        Command::Check { config, no_bind } => match ringlb::check::check(&config, !no_bind) {
            Ok(checked) => {
                for w in &checked.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{}: ok", config.display());
                print!("{}", checked.config.summary());
                println!("{}", checked.io_line());
                for line in &checked.dns {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Demo {
            listen,
            clients,
            duration,
            workers,
        } => {
            let opts = demo::DemoOptions {
                listen,
                workers,
                ..Default::default()
            };
            let run = demo::RunOptions { clients, duration };
            ringlb::engine::raise_nofile();
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [SIGINT, SIGTERM] {
                if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
                    eprintln!("error: cannot install signal handler: {e}");
                    return ExitCode::FAILURE;
                }
            }
            match demo::run(&opts, &run, stop) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::MockBackend(a) => {
            let mode = match a.mode {
                MockMode::Inference => fleet::Mode::Inference,
                MockMode::Echo => fleet::Mode::Echo,
                MockMode::Source => fleet::Mode::Source { bytes: a.bytes },
                MockMode::Respond => fleet::Mode::Respond { bytes: a.bytes },
                MockMode::Sink => fleet::Mode::Sink,
            };
            let opts = fleet::MockOptions {
                name: a.name,
                listen: a.listen,
                mode,
                tokens_per_sec: a.tokens_per_sec,
                ttft: a.ttft,
                capacity: a.capacity,
                worker_threads: a.threads,
                warmup: a.warmup,
                health_delay: a.health_delay,
                metrics_flavor: match a.metrics_flavor {
                    MetricsFlavorArg::Vllm => fleet::MetricsFlavor::Vllm,
                    MetricsFlavorArg::Sglang => fleet::MetricsFlavor::Sglang,
                    MetricsFlavorArg::Tgi => fleet::MetricsFlavor::Tgi,
                },
                external_load: a.external_load,
                slowdown: a.slowdown,
                max_tokens_dist: a.max_tokens_dist,
                kv_tokens: a.kv_tokens,
                prompt_tokens: a.prompt_tokens,
                ..Default::default()
            };
            match fleet::run_blocking(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            config,
            take_over,
            take_over_if_running,
        } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let options = ringlb::process::RunOptions {
                take_over,
                take_over_if_running,
            };
            match ringlb::process::run_with(&cfg, &config, options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    // An address that cannot be bound is for the operator to fix, like a bad
                    // config; anything else is ringlb's own failure.
                    ExitCode::from(if e.is_config() { EXIT_CONFIG } else { 1 })
                }
            }
        }
    }
}

fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).init(),
    }
}
