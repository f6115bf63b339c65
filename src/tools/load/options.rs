//! The plain options of one load run ([`LoadOptions`]), shared by the CLI, the tests and the
//! benchmarks, and their validation. Must never need the CLI to be built: tests fill it directly.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LoadError;
use super::lengths::Lengths;
use crate::tools::lengths::TokenDist;

/// Short completions: enough tokens to watch a stream spread over backends, short enough that a
/// demo run finishes many streams per connection.
pub const DEFAULT_MAX_TOKENS: u32 = 32;
/// Any prompt works for a mock backend; a real one answers it cheaply.
pub const DEFAULT_PROMPT: &str = "Say hello to the load balancer.";
/// The brief's echo size: one small request, so echo measures round trips, not bandwidth.
pub const DEFAULT_MESSAGE_SIZE: usize = 100;
/// Long enough for a real model to stream a few hundred tokens, short enough that a hung
/// backend shows up as a timeout within a demo run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Any fixed number repeats a run's draws; zero is as good as any and easy to type.
pub const DEFAULT_SEED: u64 = 0;
/// The header the mock fleet (and the demo's real backends behind a tag) name themselves in.
pub const DEFAULT_BACKEND_HEADER: &str = "x-backend";
/// The cheapest endpoint that every inference server (vLLM, SGLang, TGI) exposes.
pub const DEFAULT_HTTP_PATH: &str = "/health";
/// The OpenAI-compatible completions endpoint that vLLM and SGLang stream from.
pub const DEFAULT_SSE_PATH: &str = "/v1/completions";
/// The mock fleet's token-streaming WebSocket endpoint.
pub const DEFAULT_WS_PATH: &str = "/v1/stream";
/// Longest --duration or --timeout accepted: far beyond any soak run, and small enough that
/// adding it to a clock reading can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Echo messages larger than this are a bandwidth test, not what this tool is for, and would
/// make every connection hold two buffers of that size.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// What traffic to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// POST /v1/completions with stream=true and count `data:` events until [DONE].
    Sse,
    /// Send a prompt over ws://TARGET/v1/stream and count text messages until [DONE].
    #[value(alias = "ws")]
    Websocket,
    /// GET a path (default /health) on keep-alive connections.
    Http,
    /// Write --message-size bytes and read the same bytes back.
    #[value(alias = "echo")]
    TcpEcho,
    /// Open the connections and hold them for the duration.
    Idle,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sse => "sse",
            Mode::Websocket => "websocket",
            Mode::Http => "http",
            Mode::TcpEcho => "tcp-echo",
            Mode::Idle => "idle",
        }
    }

    /// Whether requests in this mode stream tokens (and so have a time to first token).
    pub fn streams_tokens(self) -> bool {
        matches!(self, Mode::Sse | Mode::Websocket)
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Issue requests for this long, then let the ones in flight finish.
    Duration(Duration),
    /// Issue exactly this many requests in total.
    Requests(u64),
}

/// Everything one run needs. Build with [`LoadOptions::new`] and change the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub mode: Mode,
    /// `HOST:PORT`; also sent as the Host header and in the WebSocket URL.
    pub target: String,
    /// Concurrent connections (closed loop: each runs requests back to back).
    pub connections: usize,
    pub limit: Limit,
    /// Open loop: requests per second in total, on a fixed timetable.
    pub rate: Option<f64>,
    pub max_tokens: u32,
    /// When set, each request's `max_tokens` is drawn from this (seeded by `seed`) instead.
    pub max_tokens_dist: Option<TokenDist>,
    /// Seed of the `max_tokens_dist` draws.
    pub seed: u64,
    pub prompt: String,
    /// Sent as `"model"` in SSE requests when set (some servers require it).
    pub model: Option<String>,
    /// Request path; `None` means the mode's default.
    pub path: Option<String>,
    pub message_size: usize,
    pub new_connection_per_request: bool,
    /// Per request (and per connect).
    pub timeout: Duration,
    /// Count successful responses per value of this response header.
    pub backend_header: Option<String>,
    /// Draw a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Write one JSON line per finished request here (see `RequestLogEntry`).
    pub request_log: Option<PathBuf>,
}

impl LoadOptions {
    pub fn new(mode: Mode, target: impl Into<String>, connections: usize, limit: Limit) -> Self {
        LoadOptions {
            mode,
            target: target.into(),
            connections,
            limit,
            rate: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            max_tokens_dist: None,
            seed: DEFAULT_SEED,
            prompt: DEFAULT_PROMPT.to_string(),
            model: None,
            path: None,
            message_size: DEFAULT_MESSAGE_SIZE,
            new_connection_per_request: false,
            timeout: DEFAULT_TIMEOUT,
            backend_header: None,
            progress: false,
            request_log: None,
        }
    }

    /// The request path: the one given, or the mode's default.
    pub fn path(&self) -> &str {
        if let Some(path) = &self.path {
            return path;
        }
        match self.mode {
            Mode::Sse => DEFAULT_SSE_PATH,
            Mode::Websocket => DEFAULT_WS_PATH,
            Mode::Http | Mode::TcpEcho | Mode::Idle => DEFAULT_HTTP_PATH,
        }
    }

    /// Where each stream's `max_tokens` comes from.
    pub fn lengths(&self) -> Lengths {
        match self.max_tokens_dist {
            Some(dist) => Lengths::Drawn {
                dist,
                seed: self.seed,
            },
            None => Lengths::Fixed(u64::from(self.max_tokens)),
        }
    }

    /// Rejects combinations that cannot run or would be silently ignored.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |msg: String| Err(LoadError::InvalidOptions(msg));
        if self.connections == 0 {
            return bad("--connections must be at least 1".into());
        }
        match self.limit {
            Limit::Duration(d) if d.is_zero() || d > MAX_DURATION => {
                return bad(format!(
                    "--duration must be positive and at most {MAX_DURATION:?}"
                ))
            }
            Limit::Requests(0) => return bad("--requests must be at least 1".into()),
            _ => {}
        }
        if let Some(rate) = self.rate {
            if !rate.is_finite() || rate <= 0.0 {
                return bad(format!("--rate must be a positive number, not {rate}"));
            }
        }
        if self.timeout.is_zero() || self.timeout > MAX_DURATION {
            return bad(format!(
                "--timeout must be positive and at most {MAX_DURATION:?}"
            ));
        }
        if self.message_size == 0 || self.message_size > MAX_MESSAGE_SIZE {
            return bad(format!("--message-size must be in 1..={MAX_MESSAGE_SIZE}"));
        }
        if let Some(path) = &self.path {
            if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20) {
                return bad(format!(
                    "--path must start with / and hold no spaces: {path:?}"
                ));
            }
        }
        if let Some(name) = &self.backend_header {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return bad(format!("--backend-header is not a header name: {name:?}"));
            }
        }
        self.validate_mode()
    }

    fn validate_mode(&self) -> Result<(), LoadError> {
        let bad = |msg: &str| {
            Err(LoadError::InvalidOptions(format!(
                "{} mode: {msg}",
                self.mode.name()
            )))
        };
        let http_like = matches!(self.mode, Mode::Sse | Mode::Websocket | Mode::Http);
        if !http_like && self.backend_header.is_some() {
            return bad("--backend-header needs sse, websocket or http");
        }
        if !http_like && self.path.is_some() {
            return bad("--path needs sse, websocket or http");
        }
        if let Some(dist) = &self.max_tokens_dist {
            if !self.mode.streams_tokens() {
                return bad("--max-tokens-dist needs sse or websocket");
            }
            if let Err(e) = dist.check() {
                return bad(&format!("--max-tokens-dist: {e}"));
            }
        }
        if self.mode == Mode::Idle {
            if !matches!(self.limit, Limit::Duration(_)) {
                return bad("idle connections are held for --duration; --requests does not apply");
            }
            if self.rate.is_some() || self.new_connection_per_request {
                return bad("--rate and --new-connection-per-request do not apply");
            }
        }
        Ok(())
    }
}

/// RFC 9110 token characters, the only ones allowed in a header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: Mode) -> LoadOptions {
        LoadOptions::new(mode, "127.0.0.1:1", 1, Limit::Requests(1))
    }

    #[test]
    fn defaults_validate_and_paths_follow_mode() {
        for mode in [Mode::Sse, Mode::Websocket, Mode::Http, Mode::TcpEcho] {
            opts(mode).validate().unwrap();
        }
        assert_eq!(opts(Mode::Sse).path(), "/v1/completions");
        assert_eq!(opts(Mode::Websocket).path(), "/v1/stream");
        assert_eq!(opts(Mode::Http).path(), "/health");
    }

    #[test]
    fn rejects_nonsense() {
        let mut o = opts(Mode::Http);
        o.connections = 0;
        assert!(o.validate().is_err());
        let mut o = opts(Mode::Http);
        o.rate = Some(f64::NAN);
        assert!(o.validate().is_err());
        let mut o = opts(Mode::Http);
        o.path = Some("/a b".into());
        assert!(o.validate().is_err());
        let mut o = opts(Mode::Http);
        o.backend_header = Some("x backend".into());
        assert!(o.validate().is_err());
        assert!(
            opts(Mode::Idle).validate().is_err(),
            "idle needs a duration"
        );
        let mut o = opts(Mode::TcpEcho);
        o.backend_header = Some("x-backend".into());
        assert!(o.validate().is_err());
        let mut o = opts(Mode::Http);
        o.max_tokens_dist = Some(TokenDist::Fixed(5));
        assert!(o.validate().is_err(), "lengths need a token stream");
        let mut o = opts(Mode::Sse);
        o.max_tokens_dist = Some(TokenDist::LogNormal {
            median: -3.0,
            sigma: 1.0,
            max: 10,
        });
        assert!(
            o.validate().is_err(),
            "a bad distribution from code is refused"
        );
    }

    #[test]
    fn lengths_follow_the_options() {
        let mut o = opts(Mode::Sse);
        assert_eq!(o.lengths(), Lengths::Fixed(u64::from(DEFAULT_MAX_TOKENS)));
        o.max_tokens_dist = Some(TokenDist::Fixed(7));
        o.seed = 3;
        o.validate().unwrap();
        assert_eq!(
            o.lengths(),
            Lengths::Drawn {
                dist: TokenDist::Fixed(7),
                seed: 3
            }
        );
    }
}
