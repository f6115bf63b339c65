//! The report's arithmetic and rendering on fixed runs: medians, paired added latency, ratios,
//! verdicts, fleet balance, the markdown and the chart.

use super::goals::{evaluate_all, Verdict};
use super::input::RawResults;
use super::metrics::{imbalance, mean_shares, run_metrics, Metric};
use super::model::{ClientReport, FleetSample, Run, Target, Workload};
use super::summary::{median, ratio, Summary};
use super::{chart, markdown};

fn run(workload: Workload, target: Target, round: u32) -> Run {
    Run {
        workload,
        target,
        round,
        client: ClientReport::default(),
        cpu_user_s: None,
        cpu_sys_s: None,
        rss_before_kb: None,
        rss_held_kb: None,
        held: None,
        samples: Vec::new(),
    }
}

fn bulk(target: Target, round: u32, gigabytes: f64, cpu_s: Option<f64>) -> Run {
    let mut r = run(Workload::Bulk, target, round);
    r.client.bytes = (gigabytes * 1e9) as u64;
    r.client.duration_s = 3.0;
    r.client.requests = 100;
    r.client.ok = 100;
    r.cpu_user_s = cpu_s.map(|_| 0.0);
    r.cpu_sys_s = cpu_s;
    r
}

fn small(target: Target, round: u32, p50: f64, p99: f64) -> Run {
    let mut r = run(Workload::Small, target, round);
    r.client.request.count = 1000;
    r.client.request.p50 = p50;
    r.client.request.p99 = p99;
    r.client.requests = 1000;
    r
}

fn sample(t_ms: u64, backend: &str, capacity: u64, running: u64) -> FleetSample {
    FleetSample {
        t_ms,
        backend: backend.to_string(),
        capacity,
        running,
        waiting: 0,
    }
}

fn fixture() -> Vec<Run> {
    let mut runs = vec![
        bulk(Target::Direct, 1, 3.0, None),
        bulk(Target::Ringlb, 1, 2.4, Some(1.2)),
        bulk(Target::Ringlb, 2, 2.1, Some(1.2)),
        bulk(Target::Ringlb, 3, 2.7, Some(1.2)),
        bulk(Target::Haproxy, 1, 1.8, Some(2.0)),
        bulk(Target::Haproxy, 2, 1.8, Some(2.0)),
        small(Target::Direct, 1, 100.0, 1000.0),
        small(Target::Direct, 2, 90.0, 1200.0),
        small(Target::Ringlb, 1, 150.0, 1500.0),
        small(Target::Ringlb, 2, 140.0, 2000.0),
        small(Target::Haproxy, 1, 160.0, 1600.0),
        small(Target::Haproxy, 2, 170.0, 1800.0),
    ];
    let mut idle = run(Workload::Idle, Target::Ringlb, 1);
    idle.rss_before_kb = Some(1000);
    idle.rss_held_kb = Some(2000);
    idle.held = Some(2000);
    idle.client.requests = 2000;
    idle.client.closed_early = 3;
    runs.push(idle);
    runs
}

#[test]
fn medians_and_ratios() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(ratio(3.0, 2.0), Some(1.5));
    assert_eq!(ratio(3.0, 0.0), None);
    assert_eq!(ratio(3.0, -1.0), None);
}

#[test]
fn summary_takes_medians_and_pairs_added_latency_by_round() {
    let s = Summary::build(&fixture(), 1);
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
    assert!(close(s.value(Metric::BulkGbps, Target::Ringlb), 0.8));
    assert!(close(s.value(Metric::BulkGbps, Target::Haproxy), 0.6));
    assert!(close(
        s.ratio_vs_haproxy(Metric::BulkGbps, Target::Ringlb),
        0.8 / 0.6
    ));
    assert!(close(s.value(Metric::BulkCpuPerGb, Target::Ringlb), 0.5));
    assert_eq!(s.value(Metric::BulkCpuPerGb, Target::Direct), None);
    // ringlb adds 500 and 800 us in rounds 1 and 2; HAProxy 600 and 600.
    assert!(close(s.value(Metric::AddedP99Us, Target::Ringlb), 650.0));
    assert!(close(s.value(Metric::AddedP99Us, Target::Haproxy), 600.0));
    assert!(close(s.value(Metric::AddedP50Us, Target::Ringlb), 50.0));
    assert_eq!(s.value(Metric::AddedP99Us, Target::Direct), None);
    assert!(close(
        s.value(Metric::IdleBytesPerConn, Target::Ringlb),
        512.0
    ));
    let f = s.failures(Workload::Idle, Target::Ringlb);
    assert_eq!((f.failed, f.attempted), (3, 2000));
}

#[test]
fn verdicts_follow_the_targets() {
    let s = Summary::build(&fixture(), 1);
    let goals = evaluate_all(&s);
    let verdict = |m: Metric| goals.iter().find(|g| g.goal.metric == m).unwrap().verdict;
    assert_eq!(verdict(Metric::IdleBytesPerConn), Verdict::Pass);
    assert_eq!(verdict(Metric::BulkGbps), Verdict::Pass, "1.33x >= 1.3x");
    assert_eq!(
        verdict(Metric::BulkCpuPerGb),
        Verdict::Pass,
        "0.45x <= 0.5x"
    );
    assert_eq!(
        verdict(Metric::AddedP99Us),
        Verdict::Miss,
        "650 us > 600 us"
    );
    assert_eq!(verdict(Metric::ConnsPerSec), Verdict::NotMeasured);
}

#[test]
fn runs_without_figures_yield_none() {
    let mut r = bulk(Target::Ringlb, 1, 0.0, Some(1.0));
    r.client.duration_s = 0.0;
    assert!(
        run_metrics(&r, 1).is_empty(),
        "no bytes, no GB/s and no CPU per GB"
    );
    let idle = run(Workload::Idle, Target::Haproxy, 1);
    assert!(run_metrics(&idle, 1).is_empty());
}

#[test]
fn fleet_balance_against_capacity() {
    let mut samples = Vec::new();
    // t=0: ramp-up, too few streams to count. t=1: exact. t=2 and 3: reversed.
    for (t, load) in [
        (0, [1, 0, 0]),
        (1, [100, 200, 300]),
        (2, [300, 200, 100]),
        (3, [300, 200, 100]),
    ] {
        for (i, (cap, active)) in [100, 200, 300].into_iter().zip(load).enumerate() {
            samples.push(sample(t, &format!("gpu{i}"), cap, active));
        }
    }
    let tvd = imbalance(&samples, 300).unwrap();
    assert!((tvd - 100.0 / 3.0).abs() < 1e-9, "{tvd}");
    assert_eq!(imbalance(&samples[..3], 300), None, "only ramp-up samples");
    let shares = mean_shares(&samples[3..6], 300);
    assert!((shares["gpu2"].1 - 50.0).abs() < 1e-9);
    assert_eq!(shares["gpu0"].0, 100);
}

#[test]
fn markdown_shows_figures_ratios_verdicts_and_failures() {
    let raw = RawResults {
        meta: vec![
            ("date".into(), "2026-11-25".into()),
            ("rounds".into(), "3".into()),
        ],
        runs: fixture(),
    };
    let s = Summary::build(&raw.runs, 1);
    let md = markdown::render(&raw, &s, &evaluate_all(&s), 1);
    assert!(md.starts_with("# ringlb vs HAProxy vs NGINX, 2026-11-25"));
    assert!(
        md.contains(
            "| bulk | throughput, GB/s | higher | 1.00 | 0.800 | - | 0.600 | - | 1.33x | - | - |"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "| memory per idle relayed connection | <= 1024 bytes | 512 | - | - | **PASS** |"
        ),
        "{md}"
    );
    assert!(md.contains("| added p99 latency, small messages | no worse than HAProxy | 650 | 600 | 1.08x | **MISS** |"), "{md}");
    assert!(
        md.contains("| connections per second | >= 1.3x HAProxy | - | - | - | **not measured** |"),
        "{md}"
    );
    assert!(md.contains("512 (!)"), "idle figure marked: {md}");
    assert!(md.contains("| idle streams | ringlb | 3 | 2000 |"), "{md}");
    assert!(md.contains("| date | 2026-11-25 |"));
}

#[test]
fn chart_draws_one_group_per_figure_with_haproxy() {
    let s = Summary::build(&fixture(), 1);
    let groups = chart::groups(&s);
    let charted: Vec<Metric> = groups.iter().map(|g| g.0).collect();
    assert_eq!(
        charted,
        [Metric::BulkGbps, Metric::BulkCpuPerGb, Metric::AddedP99Us]
    );
    let path = std::env::temp_dir().join(format!("ringlb-bench-chart-{}.svg", std::process::id()));
    chart::draw(&s, "test", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains("ringlb") && svg.contains("HAProxy") && svg.contains("CPU/GB"));
}
