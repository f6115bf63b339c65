//! From the facts of a run to its report: every stream judged against the kills, the tally,
//! the streams each kill cut, the run-level checks and the verdict. Must never judge a stream
//! twice or skip one: every started stream is either judged or counted as hung.

use std::path::PathBuf;
use std::process::ExitStatus;

use super::args::Options;
use super::checks::{self, Inputs};
use super::header::Header;
use super::kills::KillEvent;
use super::monitor::{IdleCpu, Peak, Tick};
use super::procfs::Usage;
use super::record::StreamRecord;
use super::report::{KillLine, Report, RingLbFigures};
use super::ringlb::LogSummary;
use super::shared::Unmatched;
use super::tally::Tally;
use super::verdict::{judge, StreamCheck, KILL_ATTRIBUTION_MS};

/// What a run observed, before any judgement.
pub struct Facts {
    pub opts: Options,
    pub open_limit: usize,
    pub nofile: u64,
    pub first_wave: usize,
    pub load_s: f64,
    pub elapsed_s: f64,
    pub started: Vec<Header>,
    pub records: Vec<StreamRecord>,
    pub kills: Vec<KillEvent>,
    pub unmatched: Unmatched,
    pub binary: PathBuf,
    pub work_dir: PathBuf,
    pub log: PathBuf,
    pub baseline: Usage,
    pub all_open: Usage,
    pub peak: Peak,
    pub after: Usage,
    pub settle_s: f64,
    pub leftover_sockets: std::collections::BTreeMap<String, u64>,
    pub timeline: Vec<Tick>,
    pub rss_tolerance_kib: u64,
    pub idle: IdleCpu,
    /// `Some(status)` if ringlb had exited before the streams were over.
    pub died: Option<String>,
    pub stop: Result<ExitStatus, String>,
    pub log_summary: LogSummary,
    /// Growth of the kernel's TCP trouble counters over the run (see `netstat`).
    pub kernel_tcp: Vec<(String, u64)>,
}

pub fn assemble(f: Facts) -> Report {
    let marks: Vec<_> = f.kills.iter().map(KillEvent::mark).collect();
    let mut tally = Tally::new(f.started.len());
    let mut seen = vec![false; f.started.len()];
    for rec in &f.records {
        if let Some(s) = seen.get_mut(rec.header.id as usize) {
            *s = true;
        }
        tally.add(rec, &judge(rec, &marks));
    }
    for h in f.started.iter().filter(|h| !seen[h.id as usize]) {
        tally.add_hung(h);
    }
    let kills = f
        .kills
        .iter()
        .map(|e| {
            let killed = tally.killed_on.get(&e.backend).copied().unwrap_or(0);
            let window = e.at_ms..=e.at_ms + KILL_ATTRIBUTION_MS;
            let early = tally
                .cut_before_header_at
                .iter()
                .filter(|t| window.contains(t));
            KillLine {
                event: e.clone(),
                streams_cut: killed + early.count() as u64,
            }
        })
        .collect();
    let exit_error = match &f.stop {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("exited with {s}")),
        Err(e) => Some(e.clone()),
    };
    let inputs = Inputs {
        streams: f.started.len() as u64,
        failed_streams: tally.failed_of(StreamCheck::Streams),
        failed_hashes: tally.failed_of(StreamCheck::Hashes),
        failed_resets: tally.failed_of(StreamCheck::ResetPropagation),
        hung: tally.hung,
        bad_connections: f.unmatched.bad,
        baseline: f.baseline,
        after: f.after,
        settle_s: f.settle_s,
        rss_tolerance_kib: f.rss_tolerance_kib,
        idle_pct: f.idle.pct,
        idle_max_pct: f.opts.idle_cpu_max,
        died: f.died,
        exit_error,
        restart_errors: f
            .kills
            .iter()
            .filter_map(|e| e.restart_error.clone())
            .collect(),
        kills_planned: f.opts.kills,
        kills_done: f.kills.len(),
    };
    let checks = checks::evaluate(&inputs);
    let failed_checks = checks::failed(&checks);
    Report {
        verdict: if failed_checks.is_empty() {
            "PASS"
        } else {
            "FAIL"
        },
        failed_checks,
        seed: f.opts.seed,
        open_limit: f.open_limit,
        nofile_limit: f.nofile,
        first_wave: f.first_wave,
        load_s: f.load_s,
        elapsed_s: f.elapsed_s,
        waits: tally.waits(),
        kernel_tcp: f.kernel_tcp,
        timeline: f.timeline,
        streams: tally,
        kills,
        ringlb: RingLbFigures {
            binary: f.binary,
            work_dir: f.work_dir,
            log: f.log,
            baseline: f.baseline,
            all_open: f.all_open,
            peak: f.peak,
            after: f.after,
            settle_s: f.settle_s,
            leftover_sockets: f.leftover_sockets,
            rss_tolerance_mib: f.rss_tolerance_kib >> 10,
            idle: f.idle,
            exit: match f.stop {
                Ok(s) => s.to_string(),
                Err(e) => e,
            },
            log_summary: f.log_summary,
        },
        unmatched: f.unmatched,
        checks,
        options: f.opts,
    }
}
