//! A pool's health settings: the active check (`[pool.health]`) and the passive policy
//! (`passive_failures`, `passive_backoff`, `passive_backoff_max`, `passive_early_close` on the
//! `[[pool]]` itself).
//!
//! Keys only one check kind uses (`path`, `expect_status`, `expect_body`) are accepted and
//! checked with any kind, as the strategy keys are with any strategy. This must never let
//! through a path that could break the request line (spaces, control characters), a status
//! outside 100..=599, a timeout longer than the interval (a check would overlap the next one),
//! or a backoff cap below its start.

use std::time::Duration;

use toml::Spanned;

use super::checks::Checker;
use super::error::ConfigError;
use super::format_duration;
use super::raw::{RawHealth, RawPool};

/// Two seconds: a dead or warming backend stops getting new streams within `fall` x 2 s (6 s
/// by default), at one tiny request per backend every 2 s.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// One second: a `/health` answer takes milliseconds; a server that needs a second is hung or
/// overloaded, and either way should not get new streams.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Checks closer than this would be load, not health checking; and tests use tens of ms.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);
/// Two passes in a row before a down backend is used again: one lucky answer from a flapping
/// server is not enough (HAProxy's default is 2 as well).
pub const DEFAULT_RISE: u32 = 2;
/// Three failures in a row before an up backend is taken out: one slow or lost answer should
/// not move its streams (HAProxy's default is 3).
pub const DEFAULT_FALL: u32 = 3;
/// More than this many results in a row is a typo, and at the shortest interval already a
/// second of blindness.
pub const MAX_RISE_FALL: u32 = 100;
/// What vLLM, SGLang and TGI all serve.
pub const DEFAULT_CHECK_PATH: &str = "/health";
/// A healthy inference server answers 200; SGLang answers 503 while it loads a model.
pub const DEFAULT_EXPECT_STATUS: u16 = 200;
/// Three failures in a row: one is often a transient (a SYN lost, a restart in progress);
/// three in a row means the backend is really not accepting. Same as the table's default.
pub const DEFAULT_PASSIVE_FAILURES: u32 = 3;
/// One second: long enough to stop hammering a dead backend with every new client, short
/// enough that a backend which only blipped gets traffic back almost at once.
pub const DEFAULT_PASSIVE_BACKOFF: Duration = Duration::from_secs(1);
/// Thirty seconds: probing a backend that keeps failing at most every 30 s costs nothing and
/// bounds how long a recovered backend stays unused.
pub const DEFAULT_PASSIVE_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// More failures in a row than this before marking down is a typo.
pub const MAX_PASSIVE_FAILURES: u32 = 1000;

/// The active check of a pool (`[pool.health]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub check: CheckKind,
    /// Starts with '/'; printable ASCII without spaces.
    pub path: String,
    /// Statuses that pass an `http` check; never empty.
    pub expect_status: Vec<u16>,
    /// A substring the body of an `http` answer must contain; None = any body.
    pub expect_body: Option<String>,
    pub interval: Duration,
    /// At most `interval`.
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub on_down: OnDown,
    pub start: CheckStart,
}

/// What a check does (`check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connect.
    Tcp,
    /// `GET path`, status in `expect_status`, body containing `expect_body`.
    Http,
    /// A WebSocket handshake on `path`.
    WebSocket,
}

/// Live streams of a backend the check takes down (`on_down`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDown {
    Keep,
    Reset,
}

/// A backend's state before its first check result (`start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStart {
    Up,
    Unknown,
}

/// The passive policy of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Connect failures in a row that mark a backend down; 0 = never.
    pub failures: u32,
    /// First down period; doubles per failure after a down period, up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// Streams the backend resets before its first byte count as failures.
    pub early_close: bool,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            failures: DEFAULT_PASSIVE_FAILURES,
            backoff: DEFAULT_PASSIVE_BACKOFF,
            backoff_max: DEFAULT_PASSIVE_BACKOFF_MAX,
            early_close: false,
        }
    }
}

/// One of a fixed set of names, or an error listing them.
pub(super) fn one_of<T: Copy>(
    check: &Checker,
    value: &Option<Spanned<String>>,
    ctx: &str,
    key: &str,
    names: &[(&str, T)],
    default: T,
) -> Result<T, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    names
        .iter()
        .find(|(name, _)| *name == value.get_ref())
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let allowed: Vec<String> = names.iter().map(|(n, _)| format!("{n:?}")).collect();
            check.err(
                &value.span(),
                format!(
                    "{ctx}: unknown `{key}` {:?}; allowed: {}",
                    value.get_ref(),
                    allowed.join(", ")
                ),
            )
        })
}

/// A `path` key: starts with '/', printable ASCII without spaces (it goes into a request
/// line as is), or `default` when absent.
pub(super) fn request_path(
    check: &Checker,
    ctx: &str,
    value: &Option<Spanned<String>>,
    default: &str,
) -> Result<String, ConfigError> {
    let Some(value) = value else {
        return Ok(default.to_string());
    };
    let text = value.get_ref();
    let printable = text.bytes().all(|b| b.is_ascii_graphic());
    if !text.starts_with('/') || !printable {
        return Err(check.err(
            &value.span(),
            format!(
                "{ctx}: `path` must start with '/' and hold no spaces or control characters, \
                 got {text:?}"
            ),
        ));
    }
    Ok(text.clone())
}

/// The passive keys of pool `p`.
pub(super) fn validate_passive(
    check: &Checker,
    ctx: &str,
    p: &RawPool,
) -> Result<PassiveHealth, ConfigError> {
    let failures = check.int(
        &p.passive_failures,
        ctx,
        "passive_failures",
        (0, i64::from(MAX_PASSIVE_FAILURES)),
        i64::from(DEFAULT_PASSIVE_FAILURES),
    )? as u32;
    let backoff = check.timeout(
        &p.passive_backoff,
        ctx,
        "passive_backoff",
        DEFAULT_PASSIVE_BACKOFF,
    )?;
    let backoff_max = check.timeout(
        &p.passive_backoff_max,
        ctx,
        "passive_backoff_max",
        DEFAULT_PASSIVE_BACKOFF_MAX.max(backoff),
    )?;
    if let Some(value) = &p.passive_backoff_max {
        if backoff_max < backoff {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `passive_backoff_max` must be at least `passive_backoff` ({}), got {:?}",
                    format_duration(backoff),
                    value.get_ref().0
                ),
            ));
        }
    }
    Ok(PassiveHealth {
        failures,
        backoff,
        backoff_max,
        early_close: p.passive_early_close.as_ref().is_some_and(|v| *v.get_ref()),
    })
}

/// The `[pool.health]` table of a pool, if it has one.
pub(super) fn validate_health(
    check: &Checker,
    pool_ctx: &str,
    raw: Option<&Spanned<RawHealth>>,
) -> Result<Option<HealthCheck>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let ctx = format!("{pool_ctx} health");
    let ctx = ctx.as_str();
    let h: &RawHealth = raw.get_ref();
    let kinds = [
        ("tcp", CheckKind::Tcp),
        ("http", CheckKind::Http),
        ("websocket", CheckKind::WebSocket),
    ];
    let kind = one_of(check, &h.check, ctx, "check", &kinds, CheckKind::Http)?;
    let path = request_path(check, ctx, &h.path, DEFAULT_CHECK_PATH)?;
    let expect_status = match &h.expect_status {
        None => vec![DEFAULT_EXPECT_STATUS],
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(check.err(
                    &list.span(),
                    format!("{ctx}: `expect_status` must list at least one status"),
                ));
            }
            let mut statuses = Vec::with_capacity(list.get_ref().len());
            for status in list.get_ref() {
                let v = check.int(&Some(status.clone()), ctx, "expect_status", (100, 599), 0)?;
                statuses.push(v as u16);
            }
            statuses
        }
    };
    let expect_body = h
        .expect_body
        .as_ref()
        .map(|b| b.get_ref().clone())
        .filter(|b| !b.is_empty());
    let interval = check.timeout(&h.interval, ctx, "interval", DEFAULT_CHECK_INTERVAL)?;
    if let Some(value) = &h.interval {
        if interval < MIN_CHECK_INTERVAL {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `interval` must be at least {}, got {:?}",
                    format_duration(MIN_CHECK_INTERVAL),
                    value.get_ref().0
                ),
            ));
        }
    }
    let timeout = check.timeout(
        &h.timeout,
        ctx,
        "timeout",
        DEFAULT_CHECK_TIMEOUT.min(interval),
    )?;
    if let Some(value) = &h.timeout {
        if timeout > interval {
            return Err(check.err(
                &value.span(),
                format!(
                    "{ctx}: `timeout` must be at most `interval` ({}), got {:?}",
                    format_duration(interval),
                    value.get_ref().0
                ),
            ));
        }
    }
    let range = (1, i64::from(MAX_RISE_FALL));
    let rise = check.int(&h.rise, ctx, "rise", range, i64::from(DEFAULT_RISE))? as u32;
    let fall = check.int(&h.fall, ctx, "fall", range, i64::from(DEFAULT_FALL))? as u32;
    let on_down = one_of(
        check,
        &h.on_down,
        ctx,
        "on_down",
        &[("keep", OnDown::Keep), ("reset", OnDown::Reset)],
        OnDown::Keep,
    )?;
    let start = one_of(
        check,
        &h.start,
        ctx,
        "start",
        &[("up", CheckStart::Up), ("unknown", CheckStart::Unknown)],
        CheckStart::Unknown,
    )?;
    Ok(Some(HealthCheck {
        check: kind,
        path,
        expect_status,
        expect_body,
        interval,
        timeout,
        rise,
        fall,
        on_down,
        start,
    }))
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::WebSocket => "websocket",
        }
    }
}

impl HealthCheck {
    /// One line for `ringlb check`: what is probed, how often, and the hysteresis.
    pub fn describe(&self) -> String {
        let what = match self.check {
            CheckKind::Tcp => "tcp connect".to_string(),
            CheckKind::Http => {
                let statuses: Vec<String> =
                    self.expect_status.iter().map(|s| s.to_string()).collect();
                let body = match &self.expect_body {
                    Some(b) => format!(", body contains {b:?}"),
                    None => String::new(),
                };
                format!("http GET {} expect {}{body}", self.path, statuses.join("|"))
            }
            CheckKind::WebSocket => format!("websocket handshake {}", self.path),
        };
        format!(
            "{what}, every {} (timeout {}), rise {}, fall {}, on_down {}, start {}",
            format_duration(self.interval),
            format_duration(self.timeout),
            self.rise,
            self.fall,
            match self.on_down {
                OnDown::Keep => "keep",
                OnDown::Reset => "reset",
            },
            match self.start {
                CheckStart::Up => "up",
                CheckStart::Unknown => "unknown",
            }
        )
    }
}
