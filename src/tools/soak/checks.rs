//! The run's checks and its verdict: streams, hashes, reset propagation, descriptors, memory,
//! idle CPU, the ringlb process itself and the backend restarts. Every check is a line the
//! operator can read on its own. Must never pass a run in which any check failed.

use serde::Serialize;

use super::procfs::Usage;

/// The figures the checks are made on.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub streams: u64,
    /// Streams failing the streams, hashes and reset-propagation checks (by their first failure).
    pub failed_streams: u64,
    pub failed_hashes: u64,
    pub failed_resets: u64,
    /// Streams that had not ended when the run's deadline passed.
    pub hung: u64,
    /// Backend connections with a bad, unknown or missing header.
    pub bad_connections: u64,
    pub baseline: Usage,
    pub after: Usage,
    pub settle_s: f64,
    pub rss_tolerance_kib: u64,
    pub idle_pct: f64,
    pub idle_max_pct: f64,
    /// `Some(why)` if ringlb exited before the run was over.
    pub died: Option<String>,
    /// How the SIGTERM at the end went: `Some(why)` unless it exited 0 in time.
    pub exit_error: Option<String>,
    pub restart_errors: Vec<String>,
    pub kills_planned: usize,
    pub kills_done: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: String) -> CheckResult {
    CheckResult { name, ok, detail }
}

pub fn evaluate(i: &Inputs) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let bad_streams = i.failed_streams + i.hung + i.bad_connections;
    out.push(check(
        "streams",
        bad_streams == 0,
        if bad_streams == 0 {
            format!("all {} streams completed or were cut for an expected reason", i.streams)
        } else {
            format!(
                "{} cut for no expected reason, {} still running at the deadline, {} backend connections without a valid header",
                i.failed_streams, i.hung, i.bad_connections
            )
        },
    ));
    out.push(check(
        "hashes",
        i.failed_hashes == 0,
        format!(
            "{} streams with bytes that differ from what was sent (length or BLAKE3)",
            i.failed_hashes
        ),
    ));
    out.push(check(
        "reset-propagation",
        i.failed_resets == 0,
        format!(
            "{} resets or kills that reached the other side as a clean EOF or not at all",
            i.failed_resets
        ),
    ));
    if i.died.is_some() {
        for name in ["descriptors", "memory", "idle-cpu"] {
            out.push(check(name, false, "not measured: ringlb had exited".into()));
        }
    } else {
        resources(i, &mut out);
    }
    let process = match (&i.died, &i.exit_error) {
        (Some(why), _) => Err(format!("exited during the run: {why}")),
        (None, Some(why)) => Err(format!("on SIGTERM: {why}")),
        (None, None) => Ok(()),
    };
    out.push(check(
        "ringlb-process",
        process.is_ok(),
        process
            .err()
            .unwrap_or_else(|| "stayed up, exited 0 on SIGTERM".into()),
    ));
    let restarts_ok = i.restart_errors.is_empty();
    out.push(check(
        "backend-restarts",
        restarts_ok,
        if restarts_ok {
            format!(
                "{} of {} planned kills done, every backend back",
                i.kills_done, i.kills_planned
            )
        } else {
            i.restart_errors.join("; ")
        },
    ));
    out
}

fn resources(i: &Inputs, out: &mut Vec<CheckResult>) {
    out.push(check(
        "descriptors",
        i.after.fds == i.baseline.fds,
        format!(
            "{} open after the run ({:.1} s to settle), baseline {}",
            i.after.fds, i.settle_s, i.baseline.fds
        ),
    ));
    let grown = i.after.rss_kib.saturating_sub(i.baseline.rss_kib);
    out.push(check(
        "memory",
        grown <= i.rss_tolerance_kib,
        format!(
            "RSS {} MiB after the run, baseline {} MiB: +{} MiB, tolerance {} MiB",
            i.after.rss_kib >> 10,
            i.baseline.rss_kib >> 10,
            grown >> 10,
            i.rss_tolerance_kib >> 10
        ),
    ));
    out.push(check(
        "idle-cpu",
        i.idle_pct <= i.idle_max_pct,
        format!(
            "{:.2}% of one core while idle, at most {:.2}%",
            i.idle_pct, i.idle_max_pct
        ),
    ));
}

/// The names of the checks that failed; the run passes when there are none.
pub fn failed(checks: &[CheckResult]) -> Vec<&'static str> {
    checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Inputs {
        let u = Usage {
            rss_kib: 20 << 10,
            fds: 14,
        };
        Inputs {
            streams: 300,
            baseline: u,
            after: Usage {
                rss_kib: 60 << 10,
                fds: 14,
            },
            rss_tolerance_kib: 64 << 10,
            idle_pct: 0.3,
            idle_max_pct: 2.0,
            kills_planned: 1,
            kills_done: 1,
            ..Inputs::default()
        }
    }

    #[test]
    fn a_clean_run_passes_every_check() {
        let checks = evaluate(&clean());
        assert_eq!(checks.len(), 8);
        assert!(failed(&checks).is_empty(), "{checks:?}");
    }

    #[test]
    fn each_fault_fails_its_own_check_only() {
        type Fault = Box<dyn Fn(&mut Inputs)>;
        let cases: Vec<(&str, Fault)> = vec![
            ("streams", Box::new(|i| i.failed_streams = 1)),
            ("streams", Box::new(|i| i.hung = 2)),
            ("streams", Box::new(|i| i.bad_connections = 1)),
            ("hashes", Box::new(|i| i.failed_hashes = 1)),
            ("reset-propagation", Box::new(|i| i.failed_resets = 3)),
            ("descriptors", Box::new(|i| i.after.fds = 15)),
            ("descriptors", Box::new(|i| i.after.fds = 13)),
            (
                "memory",
                Box::new(|i| i.after.rss_kib = (20 << 10) + (64 << 10) + 1),
            ),
            ("idle-cpu", Box::new(|i| i.idle_pct = 45.0)),
            (
                "ringlb-process",
                Box::new(|i| i.exit_error = Some("signal 15".into())),
            ),
            (
                "ringlb-process",
                Box::new(|i| i.exit_error = Some("exit status 1".into())),
            ),
            (
                "backend-restarts",
                Box::new(|i| i.restart_errors = vec!["in use".into()]),
            ),
        ];
        for (name, fault) in cases {
            let mut i = clean();
            fault(&mut i);
            assert_eq!(failed(&evaluate(&i)), vec![name]);
        }
    }

    #[test]
    fn a_dead_ringlb_fails_its_process_and_every_reading() {
        let mut i = clean();
        i.died = Some("signal 11".into());
        let want = vec!["descriptors", "memory", "idle-cpu", "ringlb-process"];
        assert_eq!(failed(&evaluate(&i)), want);
    }

    #[test]
    fn memory_below_the_baseline_is_fine() {
        let mut i = clean();
        i.after.rss_kib = 1;
        assert!(failed(&evaluate(&i)).is_empty());
    }
}
