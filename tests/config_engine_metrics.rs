//! `[pool.engine_metrics]` seen from outside: an empty table loads the defaults, every key is
//! used, and every bad value is one `file:line:column: message` line that points at it and
//! names the key (same style as tests/config_health.rs).

mod common;

use std::time::Duration;

use common::config_check::*;
use ringlb::config::parse;

use ringlb::balance::{EngineFlavor, EngineNames};

/// Lines 1-6 the listener and pool, `[pool.engine_metrics]` on line 7, `keys` from line 8.
fn engine_with(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec![
        "[[listener]]",
        "name = \"llm\"",
        "bind = \"127.0.0.1:8080\"",
        "pool = \"gpu\"",
        "[[pool]]",
        "name = \"gpu\"",
        "[pool.engine_metrics]",
    ];
    v.extend_from_slice(keys);
    v.extend(["[[pool.backend]]", "addr = \"127.0.0.1:9001\""]);
    v
}

#[test]
fn no_table_means_no_scrape() {
    let mut lines = engine_with(&[]);
    lines.remove(6);
    let c = ok(&lines);
    assert!(c.pools[0].engine_metrics.is_none());
    assert!(!c.summary().contains("engine metrics"));
}

#[test]
fn an_empty_table_scrapes_with_the_defaults() {
    let c = ok(&engine_with(&[]));
    let m = c.pools[0].engine_metrics.as_ref().expect("engine_metrics");
    assert_eq!(m.path, "/metrics");
    assert_eq!(m.port, None);
    assert_eq!(m.interval, Duration::from_millis(500));
    assert_eq!(
        m.timeout,
        Duration::from_millis(500),
        "the lesser of interval and 1s"
    );
    assert_eq!(m.flavor, EngineFlavor::Auto);
    assert_eq!(m.stale_after, Duration::from_secs(3));
    assert_eq!(m.stall_after, Some(Duration::from_secs(30)));
    let summary = c.summary();
    assert!(
        summary.contains(
            "engine metrics GET /metrics every 500ms (timeout 500ms), flavor auto, \
             stale_after 3s, stall_after 30s"
        ),
        "{summary}"
    );
}

#[test]
fn every_key_is_used() {
    let c = ok(&engine_with(&[
        "path = \"/v1/metrics\"",
        "port = 9400",
        "interval = \"2s\"",
        "timeout = \"1500ms\"",
        "flavor = \"custom\"",
        "running = \"engine_running\"",
        "waiting = \"engine:queued\"",
        "kv_usage = \"kv_frac\"",
        "generation = \"tokens_out_total\"",
        "stale_after = \"10s\"",
        "stall_after = \"1m\"",
    ]));
    let m = c.pools[0].engine_metrics.as_ref().expect("engine_metrics");
    assert_eq!(m.path, "/v1/metrics");
    assert_eq!(m.port, Some(9400));
    assert_eq!(m.interval, Duration::from_secs(2));
    assert_eq!(m.timeout, Duration::from_millis(1500));
    assert_eq!(
        m.flavor,
        EngineFlavor::Custom(EngineNames {
            running: "engine_running".into(),
            waiting: Some("engine:queued".into()),
            kv_usage: Some("kv_frac".into()),
            generation: Some("tokens_out_total".into()),
        })
    );
    assert_eq!(m.stale_after, Duration::from_secs(10));
    assert_eq!(m.stall_after, Some(Duration::from_secs(60)));
    assert!(c.summary().contains("GET port 9400 /v1/metrics every 2s"));

    let only_running = ok(&engine_with(&["flavor = \"custom\"", "running = \"r\""]));
    let m = only_running.pools[0].engine_metrics.as_ref().expect("m");
    assert_eq!(
        m.flavor,
        EngineFlavor::Custom(EngineNames {
            running: "r".into(),
            waiting: None,
            kv_usage: None,
            generation: None,
        })
    );
    for (flavor, want) in [
        ("vllm", EngineFlavor::Vllm),
        ("sglang", EngineFlavor::Sglang),
        ("tgi", EngineFlavor::Tgi),
        ("auto", EngineFlavor::Auto),
    ] {
        let line = format!("flavor = \"{flavor}\"");
        let c = ok(&engine_with(&[Box::leak(line.into_boxed_str())]));
        assert_eq!(c.pools[0].engine_metrics.as_ref().expect("m").flavor, want);
    }
}

#[test]
fn stall_detection_turns_off_with_off_or_zero() {
    for off in ["stall_after = \"off\"", "stall_after = \"0s\""] {
        let c = ok(&engine_with(&[off]));
        let m = c.pools[0].engine_metrics.as_ref().expect("m");
        assert_eq!(m.stall_after, None, "{off}");
        assert!(c.summary().contains("stall_after off"));
    }
}

#[test]
fn a_long_interval_raises_the_default_staleness_and_caps_the_timeout() {
    let c = ok(&engine_with(&["interval = \"5s\""]));
    let m = c.pools[0].engine_metrics.as_ref().expect("m");
    assert_eq!(m.timeout, Duration::from_secs(1));
    assert_eq!(m.stale_after, Duration::from_secs(10), "two intervals");
}

#[test]
fn bad_values_name_the_key_and_point_at_it() {
    fails(
        &engine_with(&["flavor = \"triton\""]),
        "8:10",
        &[
            "pool \"gpu\" engine_metrics",
            "unknown `flavor` \"triton\"",
            "\"auto\", \"vllm\", \"sglang\", \"tgi\", \"custom\"",
        ],
    );
    fails(
        &engine_with(&["flavor = \"custom\"", "waiting = \"w\""]),
        "8:10",
        &["missing required key `running`"],
    );
    fails(
        &engine_with(&["flavor = \"vllm\"", "running = \"r\""]),
        "9:11",
        &["`running` names a series only with `flavor = \"custom\"`"],
    );
    fails(
        &engine_with(&["flavor = \"custom\"", "running = \"9lives\""]),
        "9:11",
        &["`running` must be a Prometheus metric name"],
    );
    fails(
        &engine_with(&["interval = \"1s\"", "timeout = \"2s\""]),
        "9:11",
        &["`timeout` must be at most `interval` (1s)"],
    );
    fails(
        &engine_with(&["interval = \"1s\"", "stale_after = \"1s\""]),
        "9:15",
        &["`stale_after` must be more than `interval` (1s)"],
    );
    fails(
        &engine_with(&["stall_after = \"200ms\""]),
        "8:15",
        &["`stall_after` must be more than `interval` (500ms)"],
    );
    fails(
        &engine_with(&["stall_after = \"never\""]),
        "8:15",
        &["`stall_after`", "not a valid duration"],
    );
    fails(
        &engine_with(&["interval = \"5ms\""]),
        "8:12",
        &["`interval` must be at least 10ms"],
    );
    fails(
        &engine_with(&["path = \"metrics\""]),
        "8:8",
        &["`path` must start with '/'"],
    );
    fails(
        &engine_with(&["port = 0"]),
        "8:8",
        &["`port` must be at least 1, got 0"],
    );
    fails(
        &engine_with(&["port = 70000"]),
        "8:8",
        &["`port` must be at most 65535"],
    );
    fails(
        &engine_with(&["intervall = \"1s\""]),
        "8:1",
        &["unknown key `intervall`"],
    );
}

#[test]
fn the_shipped_example_documents_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let text = std::fs::read_to_string(path).expect("example");
    // The example's keys are indented ("#  key"), apart from [pool.health]'s; uncommenting
    // the table and its keys that have defaults must give exactly the defaults.
    let with_defaults = [
        "path",
        "interval",
        "timeout",
        "flavor",
        "stale_after",
        "stall_after",
    ];
    let uncommented: String = text
        .lines()
        .map(|l| {
            if l == "# [pool.engine_metrics]" {
                return "[pool.engine_metrics]";
            }
            match l.strip_prefix("#  ") {
                Some(rest)
                    if with_defaults
                        .iter()
                        .any(|k| rest.starts_with(&format!("{k} ="))) =>
                {
                    rest
                }
                _ => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&uncommented, "ringlb.toml").unwrap_or_else(|e| panic!("{e}"));
    let defaults = ok(&engine_with(&[]));
    assert!(
        c.pools[0].engine_metrics.is_some(),
        "the example has the table"
    );
    assert_eq!(c.pools[0].engine_metrics, defaults.pools[0].engine_metrics);
}
