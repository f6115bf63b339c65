//! The `ringlb-load` command line (clap derive) and its conversion to [`LoadOptions`], with a
//! small duration parser ("500ms", "10s", "2m", "1h"). Must never let a bad argument reach a
//! run: anything invalid becomes a clap error, which exits with status 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, CommandFactory, Parser};

use super::options::{
    Limit, LoadOptions, Mode, DEFAULT_BACKEND_HEADER, DEFAULT_MAX_TOKENS, DEFAULT_MESSAGE_SIZE,
    DEFAULT_PROMPT, DEFAULT_SEED,
};
use crate::tools::lengths::TokenDist;

/// Load generator for ringlb and GPU inference servers: SSE and WebSocket token streams, HTTP,
/// TCP echo and idle connections; closed loop, or open loop with --rate.
#[derive(Debug, Clone, Parser)]
#[command(name = "ringlb-load", version)]
#[command(group(ArgGroup::new("limit").required(true).args(["duration", "requests"])))]
pub struct LoadArgs {
    /// What traffic to generate.
    #[arg(value_enum)]
    pub mode: Mode,
    /// HOST:PORT of the balancer or backend.
    #[arg(long, short = 't')]
    pub target: String,
    /// Concurrent connections.
    #[arg(long, short = 'c', value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: u64,
    /// Run for this long ("500ms", "10s", "2m"), then let requests in flight finish.
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Run exactly this many requests in total.
    #[arg(long, short = 'n', value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Open loop: requests per second in total, latency measured from each intended start.
    #[arg(long, short = 'r', value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// max_tokens asked for per stream (sse, websocket).
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub max_tokens: u32,
    /// Draw each stream's max_tokens from a distribution instead: fixed:N or
    /// lognormal:median=M,sigma=S[,max=N] (the mock backend's syntax).
    #[arg(long, value_name = "SPEC", conflicts_with = "max_tokens")]
    pub max_tokens_dist: Option<TokenDist>,
    /// Seed of the --max-tokens-dist draws: the same seed asks for the same lengths, request
    /// by request, on every run.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Prompt sent per stream (sse, websocket).
    #[arg(long, default_value = DEFAULT_PROMPT)]
    pub prompt: String,
    /// "model" field of SSE requests, for servers that require it.
    #[arg(long)]
    pub model: Option<String>,
    /// Request path [default: /v1/completions (sse), /v1/stream (websocket), /health (http)].
    #[arg(long)]
    pub path: Option<String>,
    /// Bytes per echo message (tcp-echo).
    #[arg(long, default_value_t = DEFAULT_MESSAGE_SIZE)]
    pub message_size: usize,
    /// Open a new TCP connection for every request.
    #[arg(long)]
    pub new_connection_per_request: bool,
    /// Per-request (and per-connect) timeout.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Count responses per value of this header (default x-backend); give as --backend-header=NAME.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_BACKEND_HEADER)]
    pub backend_header: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write one JSON line per finished request (Unix times, outcome, error kind,
    /// backend header) to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl LoadArgs {
    /// The run's options; an invalid combination is a clap error (exit status 2).
    pub fn to_options(&self) -> Result<LoadOptions, clap::Error> {
        let limit = match (self.duration, self.requests) {
            (Some(d), _) => Limit::Duration(d),
            (None, Some(n)) => Limit::Requests(n),
            (None, None) => return Err(usage_error("give --duration or --requests")),
        };
        let connections = usize::try_from(self.connections)
            .map_err(|_| usage_error("--connections is too large for this machine"))?;
        let mut opts = LoadOptions::new(self.mode, self.target.clone(), connections, limit);
        opts.rate = self.rate;
        opts.max_tokens = self.max_tokens;
        opts.max_tokens_dist = self.max_tokens_dist;
        opts.seed = self.seed;
        opts.prompt = self.prompt.clone();
        opts.model = self.model.clone();
        opts.path = self.path.clone();
        opts.message_size = self.message_size;
        opts.new_connection_per_request = self.new_connection_per_request;
        opts.timeout = self.timeout;
        opts.backend_header = self.backend_header.clone();
        opts.progress = !self.quiet;
        opts.request_log = self.request_log.clone();
        opts.validate().map_err(|e| usage_error(&e.to_string()))?;
        Ok(opts)
    }
}

fn usage_error(msg: &str) -> clap::Error {
    LoadArgs::command().error(clap::error::ErrorKind::ArgumentConflict, msg)
}

/// Parses "250ms", "10s", "1.5s", "2m", "1h", "100us"; a bare number is seconds. Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s, 2m"))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use us, ms, s, m, h)"
            ))
        }
    };
    let duration =
        Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{text:?} is zero"));
    }
    Ok(duration)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of requests per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "10x", "-1s", "0s", "1e999s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cli_to_options() {
        let args = LoadArgs::try_parse_from([
            "ringlb-load",
            "sse",
            "--target",
            "127.0.0.1:9",
            "-c",
            "4",
            "--duration",
            "2s",
            "--rate",
            "50",
            "--backend-header",
            "--quiet",
        ])
        .unwrap();
        let opts = args.to_options().unwrap();
        assert_eq!(opts.limit, Limit::Duration(Duration::from_secs(2)));
        assert_eq!(opts.rate, Some(50.0));
        assert_eq!(opts.backend_header.as_deref(), Some("x-backend"));
        assert!(!opts.progress);
        assert_eq!(opts.max_tokens_dist, None);
        let args = LoadArgs::try_parse_from([
            "ringlb-load",
            "sse",
            "-t",
            "h:1",
            "-c",
            "1",
            "-n",
            "1",
            "--max-tokens-dist",
            "lognormal:median=50,sigma=1,max=900",
            "--seed",
            "11",
        ])
        .unwrap();
        let opts = args.to_options().unwrap();
        let want: TokenDist = "lognormal:median=50,sigma=1,max=900".parse().unwrap();
        assert_eq!(opts.max_tokens_dist, Some(want));
        assert_eq!(opts.seed, 11);
        let args = LoadArgs::try_parse_from([
            "ringlb-load",
            "echo",
            "-t",
            "h:1",
            "-c",
            "1",
            "-n",
            "5",
            "--backend-header=x-b",
        ])
        .unwrap();
        assert_eq!(args.mode, Mode::TcpEcho);
        assert!(
            args.to_options().is_err(),
            "backend header makes no sense for echo"
        );
    }

    #[test]
    fn cli_rejects_bad_arguments() {
        let bad: [&[&str]; 7] = [
            &[
                "ringlb-load",
                "sse",
                "-t",
                "h:1",
                "-c",
                "1",
                "-n",
                "1",
                "--max-tokens",
                "5",
                "--max-tokens-dist",
                "fixed:5",
            ],
            &[
                "ringlb-load",
                "sse",
                "-t",
                "h:1",
                "-c",
                "1",
                "-n",
                "1",
                "--max-tokens-dist",
                "lognormal:median=5",
            ],
            &["ringlb-load", "sse", "-t", "h:1", "-c", "1"],
            &[
                "ringlb-load",
                "sse",
                "-t",
                "h:1",
                "-c",
                "1",
                "-n",
                "1",
                "-d",
                "1s",
            ],
            &["ringlb-load", "sse", "-t", "h:1", "-c", "0", "-n", "1"],
            &["ringlb-load", "nope", "-t", "h:1", "-c", "1", "-n", "1"],
            &[
                "ringlb-load",
                "http",
                "-t",
                "h:1",
                "-c",
                "1",
                "-n",
                "1",
                "--rate",
                "0",
            ],
        ];
        for argv in bad {
            assert!(LoadArgs::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }
}
