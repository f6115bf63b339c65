//! The health keys of a pool seen from outside: `[pool.health]` and the `passive_*` keys load
//! with their defaults, and every bad value is one `file:line:column: message` line that points
//! at it and names the key (same style as tests/config.rs).

mod common;

use common::config_check::*;
use std::time::Duration;

use ringlb::config::{parse, CheckKind, CheckStart, OnDown, PassiveHealth};

/// Lines 1-4 the listener, 5-6 the pool, `keys` from line 7, then its backend.
fn pool_with(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec![
        "[[listener]]",
        "name = \"llm\"",
        "bind = \"127.0.0.1:8080\"",
        "pool = \"gpu\"",
        "[[pool]]",
        "name = \"gpu\"",
    ];
    v.extend_from_slice(keys);
    v.extend(["[[pool.backend]]", "addr = \"127.0.0.1:9001\""]);
    v
}

/// `[pool.health]` on line 7, `keys` from line 8.
fn health_with(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["[pool.health]"];
    v.extend_from_slice(keys);
    pool_with(&v)
}

#[test]
fn no_health_table_means_no_active_check_and_the_default_passive_policy() {
    let c = ok(&pool_with(&[]));
    let p = &c.pools[0];
    assert!(p.health.is_none());
    assert_eq!(p.passive, PassiveHealth::default());
    assert_eq!(
        (p.passive.failures, p.passive.backoff, p.passive.backoff_max),
        (3, Duration::from_secs(1), Duration::from_secs(30))
    );
    assert!(!p.passive.early_close);
    assert!(c.summary().contains("health check none"));
}

#[test]
fn an_empty_health_table_is_an_http_check_with_the_defaults() {
    let c = ok(&health_with(&[]));
    let h = c.pools[0].health.as_ref().expect("health");
    assert_eq!(h.check, CheckKind::Http);
    assert_eq!(h.path, "/health");
    assert_eq!(h.expect_status, vec![200]);
    assert_eq!(h.expect_body, None);
    assert_eq!(
        (h.interval, h.timeout, h.rise, h.fall),
        (Duration::from_secs(2), Duration::from_secs(1), 2, 3)
    );
    assert_eq!((h.on_down, h.start), (OnDown::Keep, CheckStart::Unknown));
}

#[test]
fn every_health_key_is_used() {
    let c = ok(&health_with(&[
        "check = \"websocket\"",
        "path = \"/v1/stream\"",
        "expect_status = [200, 204]",
        "expect_body = \"ok\"",
        "interval = \"500ms\"",
        "timeout = \"500ms\"",
        "rise = 1",
        "fall = 5",
        "on_down = \"reset\"",
        "start = \"up\"",
    ]));
    let h = c.pools[0].health.as_ref().expect("health");
    assert_eq!(h.check, CheckKind::WebSocket);
    assert_eq!(h.path, "/v1/stream");
    assert_eq!(h.expect_status, vec![200, 204]);
    assert_eq!(h.expect_body.as_deref(), Some("ok"));
    assert_eq!(
        (h.interval, h.timeout),
        (Duration::from_millis(500), Duration::from_millis(500))
    );
    assert_eq!((h.rise, h.fall), (1, 5));
    assert_eq!((h.on_down, h.start), (OnDown::Reset, CheckStart::Up));
    let summary = c.summary();
    assert!(
        summary.contains("websocket handshake /v1/stream, every 500ms"),
        "{summary}"
    );
    assert!(
        summary.contains("rise 1, fall 5, on_down reset, start up"),
        "{summary}"
    );
}

#[test]
fn passive_keys_are_used_and_zero_turns_it_off() {
    let c = ok(&pool_with(&[
        "passive_failures = 5",
        "passive_backoff = \"2s\"",
        "passive_backoff_max = \"1m\"",
        "passive_early_close = true",
    ]));
    let p = &c.pools[0].passive;
    assert_eq!(
        (p.failures, p.backoff, p.backoff_max, p.early_close),
        (5, Duration::from_secs(2), Duration::from_secs(60), true)
    );
    assert!(c
        .summary()
        .contains("passive 5 failures, backoff 2s to 1m, early closes count"));
    let off = ok(&pool_with(&["passive_failures = 0"]));
    assert_eq!(off.pools[0].passive.failures, 0);
    assert!(off.summary().contains("passive off"));
    // A start above the default cap raises the cap with it.
    let long = ok(&pool_with(&["passive_backoff = \"1m\""]));
    assert_eq!(long.pools[0].passive.backoff_max, Duration::from_secs(60));
}

#[test]
fn bad_health_values_name_the_key_and_point_at_it() {
    fails(
        &health_with(&["check = \"grpc\""]),
        "8:9",
        &[
            "pool \"gpu\" health",
            "unknown `check` \"grpc\"",
            "\"tcp\", \"http\", \"websocket\"",
        ],
    );
    fails(
        &health_with(&["path = \"health\""]),
        "8:8",
        &["`path` must start with '/'"],
    );
    fails(
        &health_with(&["path = \"/a b\""]),
        "8:8",
        &["`path`", "no spaces"],
    );
    fails(
        &health_with(&["expect_status = []"]),
        "8:17",
        &["`expect_status` must list at least one status"],
    );
    fails(
        &health_with(&["expect_status = [200, 999]"]),
        "8:23",
        &["`expect_status` must be at most 599, got 999"],
    );
    fails(
        &health_with(&["interval = \"5ms\""]),
        "8:12",
        &["`interval` must be at least 10ms"],
    );
    fails(
        &health_with(&["interval = \"1s\"", "timeout = \"2s\""]),
        "9:11",
        &["`timeout` must be at most `interval` (1s)"],
    );
    fails(
        &health_with(&["timeout = \"0s\""]),
        "8:11",
        &["`timeout` must be greater than 0"],
    );
    fails(
        &health_with(&["rise = 0"]),
        "8:8",
        &["`rise` must be at least 1, got 0"],
    );
    fails(
        &health_with(&["fall = 101"]),
        "8:8",
        &["`fall` must be at most 100, got 101"],
    );
    fails(
        &health_with(&["on_down = \"drain\""]),
        "8:11",
        &["unknown `on_down` \"drain\"", "\"keep\", \"reset\""],
    );
    fails(
        &health_with(&["start = \"down\""]),
        "8:9",
        &["unknown `start` \"down\"", "\"up\", \"unknown\""],
    );
    fails(
        &health_with(&["intervall = \"1s\""]),
        "8:1",
        &["unknown key `intervall`"],
    );
}

#[test]
fn bad_passive_values_name_the_key_and_point_at_it() {
    fails(
        &pool_with(&["passive_failures = -1"]),
        "7:20",
        &[
            "pool \"gpu\"",
            "`passive_failures` must be at least 0, got -1",
        ],
    );
    fails(
        &pool_with(&["passive_failures = 1001"]),
        "7:20",
        &["`passive_failures` must be at most 1000"],
    );
    fails(
        &pool_with(&["passive_backoff = \"0s\""]),
        "7:19",
        &["`passive_backoff` must be greater than 0"],
    );
    fails(
        &pool_with(&["passive_backoff = \"10s\"", "passive_backoff_max = \"5s\""]),
        "8:23",
        &["`passive_backoff_max` must be at least `passive_backoff` (10s)"],
    );
    fails(
        &pool_with(&["passive_early_close = \"yes\""]),
        "7:23",
        &["passive_early_close"],
    );
}

#[test]
fn the_shipped_example_documents_the_health_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let text = std::fs::read_to_string(path).expect("example");
    let keys = [
        "check =",
        "path =",
        "expect_status =",
        "expect_body =",
        "interval =",
        "timeout =",
        "rise =",
        "fall =",
        "on_down =",
        "start =",
    ];
    // Uncommenting the example's [pool.health] must give exactly the defaults.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest == "[pool.health]" || keys.iter().any(|k| rest.starts_with(k)) => {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&uncommented, "ringlb.toml").unwrap_or_else(|e| panic!("{e}"));
    let defaults = ok(&health_with(&[]));
    assert_eq!(c.pools[0].health, defaults.pools[0].health);
    assert_eq!(c.pools[0].passive, PassiveHealth::default());
}
