//! The soak's report: what ran (seed, settings), what happened to every stream, the kills, what
//! ringlb held before, at peak and after, and the checks with the verdict. Printed for a person
//! and written as JSON for a machine. Must never print PASS when a check failed, and always say
//! which check failed and how to replay the run.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::args::Options;
use super::checks::CheckResult;
use super::error::SoakError;
use super::kills::KillEvent;
use super::monitor::{IdleCpu, Peak, Tick};
use super::procfs::Usage;
use super::ringlb::LogSummary;
use super::shared::Unmatched;
use super::tally::{Tally, Waits};

/// One kill, with the streams it cut.
#[derive(Debug, Clone, Serialize)]
pub struct KillLine {
    #[serde(flatten)]
    pub event: KillEvent,
    pub streams_cut: u64,
}

/// What the ringlb process held and did.
#[derive(Debug, Clone, Serialize)]
pub struct RingLbFigures {
    pub binary: PathBuf,
    pub work_dir: PathBuf,
    pub log: PathBuf,
    pub baseline: Usage,
    /// With every stream of the first wave open at once.
    pub all_open: Usage,
    pub peak: Peak,
    pub after: Usage,
    pub settle_s: f64,
    /// ringlb's sockets by side and state after the settle wait, when descriptors were left.
    pub leftover_sockets: std::collections::BTreeMap<String, u64>,
    pub rss_tolerance_mib: u64,
    pub idle: IdleCpu,
    pub exit: String,
    pub log_summary: LogSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: &'static str,
    pub failed_checks: Vec<&'static str>,
    pub seed: u64,
    pub options: Options,
    /// Streams open at once at most (the descriptor limit allows no more).
    pub open_limit: usize,
    pub nofile_limit: u64,
    pub first_wave: usize,
    pub load_s: f64,
    pub elapsed_s: f64,
    pub streams: Tally,
    pub waits: Waits,
    /// Growth of the kernel's TCP trouble counters over the run, host-wide.
    pub kernel_tcp: Vec<(String, u64)>,
    /// The progress lines: streams and CPU every 5 s.
    pub timeline: Vec<Tick>,
    pub kills: Vec<KillLine>,
    pub ringlb: RingLbFigures,
    pub unmatched: Unmatched,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn write_json(&self, path: &Path) -> Result<(), SoakError> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").map_err(|source| SoakError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{:.1} KiB", n as f64 / 1024.0),
    }
}

fn usage(u: &Usage) -> String {
    format!("{:>6} fds {:>6} MiB", u.fds, u.rss_kib >> 10)
}

/// The 5 s stretch in which the fewest streams finished while at least half the most streams
/// ever open were open (not the drain at the end), with the CPU of both processes then,
/// against the median stretch.
fn slowest_stretch(timeline: &[Tick]) -> Option<String> {
    let open = |t: &Tick| t.started.saturating_sub(t.done);
    let most = timeline.iter().map(open).max()?;
    let stretches: Vec<(usize, &Tick)> = timeline
        .windows(2)
        .filter(|w| open(&w[0]) * 2 >= most)
        .map(|w| (w[1].done.saturating_sub(w[0].done), &w[1]))
        .collect();
    let mut rates: Vec<usize> = stretches.iter().map(|s| s.0).collect();
    rates.sort_unstable();
    let median = *rates.get(rates.len() / 2)?;
    let (n, t) = stretches.iter().min_by_key(|s| s.0)?;
    Some(format!(
        "progress    streams done per 5 s: median {median}, fewest {n} (up to {:.0} s; ringlb {:.0}% cpu, driver {:.0}% cpu then)",
        t.t_s, t.ringlb_cpu_pct, t.driver_cpu_pct
    ))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let s = &self.streams;
        writeln!(f, "== ringlb soak report")?;
        writeln!(
            f,
            "seed        {} (replay: --seed {}{})",
            self.seed,
            self.seed,
            if o.short { " --short" } else { "" }
        )?;
        writeln!(
            f,
            "run         {} streams open at once{}, {} backends, {} ringlb workers, up to {} per direction, {} kills; {:.1} s of load, {:.1} s in all",
            o.streams,
            if o.duration.is_zero() { String::new() } else { format!(" renewed for {:?}", o.duration) },
            o.backends, o.workers, bytes(o.max_size), o.kills, self.load_s, self.elapsed_s
        )?;
        writeln!(
            f,
            "open        {} streams open at once (the first wave; at most {} with RLIMIT_NOFILE {})",
            self.first_wave, self.open_limit, self.nofile_limit
        )?;
        writeln!(
            f,
            "streams     {} started, {} connected, {} completed, {} verified, {} cut as expected, {} failed, {} hung",
            s.started, s.connected, s.completed, s.verified, s.cut_expected, s.failed, s.hung
        )?;
        writeln!(
            f,
            "bytes       client->backend {} verified, backend->client {} verified",
            bytes(s.up_bytes_verified),
            bytes(s.down_bytes_verified)
        )?;
        let w = &self.waits;
        writeln!(
            f,
            "waits       longest wait for a byte per stream ({} without a planned stall): p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms (stream {})",
            w.streams, w.p50_ms, w.p99_ms, w.p999_ms, w.max_ms, w.max_stream
        )?;
        if let Some(line) = slowest_stretch(&self.timeline) {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "cuts        expected:")?;
        for (reason, n) in &s.cut_by_reason {
            writeln!(f, "              {n:>6}  {reason}")?;
        }
        writeln!(
            f,
            "by kind     {:<20} {:>7} {:>8} {:>9} {:>6} {:>7}",
            "kind", "streams", "stalled", "verified", "cut", "failed"
        )?;
        for k in &s.by_kind {
            writeln!(
                f,
                "            {:<20} {:>7} {:>8} {:>9} {:>6} {:>7}",
                k.kind, k.streams, k.stalled, k.verified, k.cut, k.failed
            )?;
        }
        for k in &self.kills {
            let e = &k.event;
            write!(
                f,
                "kill        backend {} at {:.1} s ({} streams done), listener closed {} ms later, \
                 down {:.1} s, {} streams cut, ",
                e.backend,
                e.at_ms as f64 / 1000.0,
                e.streams_done,
                e.closed_ms.saturating_sub(e.at_ms),
                e.down_ms as f64 / 1000.0,
                k.streams_cut
            )?;
            match &e.restart_error {
                None => writeln!(
                    f,
                    "back on its port after {} bind attempt(s)",
                    e.rebind_attempts
                )?,
                Some(err) => writeln!(f, "NOT BACK: {err}")?,
            }
        }
        let r = &self.ringlb;
        writeln!(f, "ringlb      baseline {}", usage(&r.baseline))?;
        writeln!(f, "            all open {}", usage(&r.all_open))?;
        writeln!(
            f,
            "            peak     {:>6} fds {:>6} MiB",
            r.peak.fds,
            r.peak.rss_kib >> 10
        )?;
        writeln!(
            f,
            "            after    {} ({:.1} s after the last stream)",
            usage(&r.after),
            r.settle_s
        )?;
        if !r.leftover_sockets.is_empty() {
            let parts: Vec<String> = r
                .leftover_sockets
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            writeln!(f, "            left     {}", parts.join(", "))?;
        }
        writeln!(
            f,
            "idle cpu    {:.2} s over {:.1} s ({:.2}% of one core)",
            r.idle.cpu_s, r.idle.window_s, r.idle.pct
        )?;
        if !self.kernel_tcp.is_empty() {
            let parts: Vec<String> = self
                .kernel_tcp
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(
                f,
                "kernel tcp  {} (host-wide, over the run)",
                parts.join(", ")
            )?;
        }
        writeln!(f, "exit        {}", r.exit)?;
        writeln!(
            f,
            "log         {} ({} warnings, {} errors)",
            r.log.display(),
            r.log_summary.warnings,
            r.log_summary.errors
        )?;
        let u = &self.unmatched;
        writeln!(
            f,
            "backends    {} empty connections (the readiness probe), {} cut before the header, {} bad",
            u.empty, u.cut_before_header, u.bad
        )?;
        for b in &u.bad_samples {
            writeln!(f, "              bad: {b}")?;
        }
        if !s.failed_by_key.is_empty() {
            let mut keys: Vec<_> = s.failed_by_key.iter().collect();
            keys.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            writeln!(f, "failed      by first failure:")?;
            for (key, n) in keys {
                writeln!(f, "              {n:>6}  {key}")?;
            }
        }
        if !s.failures.is_empty() {
            writeln!(f, "failures    first {} of {}:", s.failures.len(), s.failed)?;
            for x in &s.failures {
                let h = &x.header;
                writeln!(
                    f,
                    "  stream {} {}{} up {} down {} seed {} backend {:?}",
                    h.id,
                    h.kind.name(),
                    if h.stall { " (stalled client)" } else { "" },
                    h.up_len,
                    h.down_len,
                    h.seed,
                    x.backend
                )?;
                for why in &x.failures {
                    writeln!(
                        f,
                        "    {}: {}",
                        super::tally::check_name(why.check),
                        why.what
                    )?;
                }
            }
        }
        if !s.hung_ids.is_empty() {
            writeln!(f, "hung        streams {:?}", s.hung_ids)?;
        }
        writeln!(f, "checks")?;
        for c in &self.checks {
            writeln!(
                f,
                "  {} {:<18} {}",
                if c.ok { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        if self.failed_checks.is_empty() {
            writeln!(f, "verdict     PASS")
        } else {
            writeln!(f, "verdict     FAIL: {}", self.failed_checks.join(", "))
        }
    }
}
