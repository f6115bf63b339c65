//! The `ringlb-soak` command line and its two presets: the default soak (10,000 streams open at
//! once, renewed as they end for three minutes, four backends, four kills) and `--short` for CI
//! (300 streams once, two backends, one kill, well under 30 s). A flag given explicitly always
//! wins over the preset. Must never accept settings that make a check meaningless (a
//! no-progress limit shorter than a stall).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::error::SoakError;
use super::plan::STALL_MAX;
use crate::config::parse_duration;

/// ringlb's default receive buffers per worker (`buffer_size` x `buffer_count`): the part of
/// them not yet resident at the baseline may become resident under load and stay so.
pub const RINGLB_BUFFERS_PER_WORKER: u64 = 128 * 1024 * 512;
/// RSS allowed above the baseline after the run beyond that (slab growth, allocator caches).
pub const DEFAULT_RSS_SLACK_MIB: u64 = 32;

/// Soak-and-fault test of the ringlb binary: real backends, real faults, every byte hashed.
#[derive(Parser, Debug)]
#[command(name = "ringlb-soak", version)]
pub struct SoakArgs {
    /// The ringlb binary to run.
    #[arg(long, default_value = "target/release/ringlb")]
    pub ringlb: PathBuf,
    /// CI-sized run: 300 streams, 2 backends, 1 kill, 1 MiB at most per direction.
    #[arg(long)]
    pub short: bool,
    /// Streams open at once, as far as the open files limit allows (default 10000; --short 300).
    #[arg(long)]
    pub streams: Option<usize>,
    /// After the first wave, start a new stream whenever one ends, for this long; 0s runs the
    /// first wave only (default 3m; --short 0s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Backends the driver starts (default 4; --short 2).
    #[arg(long)]
    pub backends: Option<usize>,
    /// ringlb's `[runtime] workers`.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Largest direction of a stream, e.g. 4MiB (default 4MiB; --short 1MiB).
    #[arg(long, value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Backend kills during the run (default 4; --short 1).
    #[arg(long)]
    pub kills: Option<usize>,
    /// How long a killed backend stays down (default 3s; --short 2s).
    #[arg(long, value_parser = parse_duration)]
    pub down_time: Option<Duration>,
    /// Seed of the whole run (default: drawn and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where ringlb's config and log go (default: a new directory under the temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// A stream on which no byte moved for this long is cut (counted as a failure).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub no_progress: Duration,
    /// Streams still running this long after the last one started count as hung (default 10m;
    /// --short 2m).
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// After the run, how long descriptors and RSS may take to come back.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub settle: Duration,
    /// RSS allowed above the baseline after the run, MiB (default: 32 + the part of ringlb's
    /// buffer rings not resident at the baseline).
    #[arg(long)]
    pub rss_tolerance_mib: Option<u64>,
    /// Idle CPU window after the run (default 3s; --short 2s).
    #[arg(long, value_parser = parse_duration)]
    pub idle_window: Option<Duration>,
    /// Most CPU ringlb may use while idle, percent of one core.
    #[arg(long, default_value_t = 2.0)]
    pub idle_cpu_max: f64,
}

/// The settings of a run, presets applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    pub ringlb: PathBuf,
    pub short: bool,
    pub streams: usize,
    pub duration: Duration,
    pub backends: usize,
    pub workers: usize,
    pub max_size: u64,
    pub kills: usize,
    pub down_time: Duration,
    pub seed: u64,
    pub json: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    pub no_progress: Duration,
    pub deadline: Duration,
    pub settle: Duration,
    /// `None`: worked out from the baseline (see [`Options::rss_tolerance_kib`]).
    pub rss_tolerance_mib: Option<u64>,
    pub idle_window: Duration,
    pub idle_cpu_max: f64,
}

impl SoakArgs {
    pub fn to_options(&self) -> Result<Options, SoakError> {
        let s = self.short;
        let pick = |given: Option<usize>, full: usize, short: usize| {
            given.unwrap_or(if s { short } else { full })
        };
        let workers = self.workers;
        let o = Options {
            ringlb: self.ringlb.clone(),
            short: s,
            streams: pick(self.streams, 10_000, 300),
            duration: self.duration.unwrap_or(secs(if s { 0 } else { 180 })),
            backends: pick(self.backends, 4, 2),
            workers,
            max_size: self.max_size.unwrap_or(if s { 1 << 20 } else { 4 << 20 }),
            kills: pick(self.kills, 4, 1),
            down_time: self.down_time.unwrap_or(secs(if s { 2 } else { 3 })),
            seed: self.seed.unwrap_or_else(rand::random),
            json: self.json.clone(),
            work_dir: self.work_dir.clone(),
            no_progress: self.no_progress,
            deadline: self.deadline.unwrap_or(secs(if s { 120 } else { 600 })),
            settle: self.settle,
            rss_tolerance_mib: self.rss_tolerance_mib,
            idle_window: self.idle_window.unwrap_or(secs(if s { 2 } else { 3 })),
            idle_cpu_max: self.idle_cpu_max,
        };
        o.validate()?;
        Ok(o)
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Options {
    /// RSS allowed above `baseline_kib` after the run: the flag, or the slack plus whatever of
    /// ringlb's buffer rings was not yet resident at the baseline.
    pub fn rss_tolerance_kib(&self, baseline_kib: u64) -> u64 {
        if let Some(mib) = self.rss_tolerance_mib {
            return mib << 10;
        }
        let workers = match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let rings_kib = (RINGLB_BUFFERS_PER_WORKER >> 10) * workers as u64;
        (DEFAULT_RSS_SLACK_MIB << 10) + rings_kib.saturating_sub(baseline_kib)
    }

    fn validate(&self) -> Result<(), SoakError> {
        let bad = |m: String| Err(SoakError::InvalidOptions(m));
        if self.streams == 0 || self.backends == 0 {
            return bad("--streams and --backends must be at least 1".into());
        }
        if self.kills > 0 && self.backends < 2 {
            return bad("killing a backend needs at least 2 backends (or --kills 0)".into());
        }
        if self.no_progress < STALL_MAX * 2 {
            return bad(format!(
                "--no-progress must be at least {:?}: a stalled client pauses up to {STALL_MAX:?}",
                STALL_MAX * 2
            ));
        }
        if self.idle_window.is_zero() {
            return bad("--idle-window must be more than 0".into());
        }
        Ok(())
    }
}

/// `4MiB`, `512KiB`, `1GiB`, `100` (bytes), `64k`, `2m`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of bytes"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}`: unit must be B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Result<Options, SoakError> {
        let mut argv = vec!["ringlb-soak"];
        argv.extend_from_slice(args);
        SoakArgs::parse_from(argv).to_options()
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("4 MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn presets_apply_unless_a_flag_is_given() {
        let full = opts(&["--seed", "1"]).unwrap();
        assert_eq!((full.streams, full.backends, full.kills), (10_000, 4, 4));
        assert_eq!(
            (full.max_size, full.duration),
            (4 << 20, Duration::from_secs(180))
        );
        let short = opts(&["--short", "--streams", "50"]).unwrap();
        assert_eq!((short.streams, short.backends, short.kills), (50, 2, 1));
        assert_eq!(
            (short.duration, short.deadline),
            (Duration::ZERO, Duration::from_secs(120))
        );
    }

    #[test]
    fn rss_tolerance_allows_only_the_rings_not_yet_resident() {
        let o = opts(&["--workers", "2"]).unwrap();
        let slack = DEFAULT_RSS_SLACK_MIB << 10;
        assert_eq!(
            o.rss_tolerance_kib(134 << 10),
            slack,
            "rings resident from the start"
        );
        assert_eq!(o.rss_tolerance_kib(8 << 10), slack + (120 << 10));
        let o = opts(&["--rss-tolerance-mib", "5"]).unwrap();
        assert_eq!(o.rss_tolerance_kib(1), 5 << 10);
    }

    #[test]
    fn settings_that_void_a_check_are_refused() {
        assert!(opts(&["--backends", "1"]).is_err());
        assert!(opts(&["--backends", "1", "--kills", "0"]).is_ok());
        assert!(opts(&["--no-progress", "5s"]).is_err());
        assert!(opts(&["--streams", "0"]).is_err());
    }
}
