//! The content-routing keys seen from outside (issue 13): `[[listener.route]]` tables, the
//! listener's peek keys, `runtime.peek_memory_max`, a pool's `send_proxy` and peeked
//! `hash_key` forms load into the compiled `route::Routes`, and every mistake is one
//! `file:line:column: message` line that points at it (same style as tests/config.rs).

mod common;

use common::config_check::*;
use ringlb::config::{load, HashKey};
use ringlb::route::{Matcher, ProxyVersion, SessionKey};
use std::path::Path;
use std::time::Duration;

const POOLS: [&str; 6] = ["general", "realtime", "embed", "large", "batch", "tls-gpu"];

/// The six pools of the issue (indexes 0..6), then the listener "api" with `keys`, then
/// `routes` lines.
fn config(keys: &[&str], routes: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for (i, p) in POOLS.iter().enumerate() {
        v.push("[[pool]]".to_string());
        v.push(format!("name = \"{p}\""));
        v.push("[[pool.backend]]".to_string());
        v.push(format!("addr = \"127.0.0.1:{}\"", 9001 + i));
    }
    v.extend(
        [
            "[[listener]]",
            "name = \"api\"",
            "bind = \"127.0.0.1:0\"",
            "pool = \"general\"",
        ]
        .map(String::from),
    );
    v.extend(keys.iter().map(|s| s.to_string()));
    v.extend(routes.iter().map(|s| s.to_string()));
    v
}

const EXAMPLE: [&str; 15] = [
    "[[listener.route]]",
    "websocket = true",
    "path_prefix = \"/v1/realtime\"",
    "pool = \"realtime\"",
    "[[listener.route]]",
    "path_prefix = \"/v1/embeddings\"",
    "pool = \"embed\"",
    "[[listener.route]]",
    "model = [\"llama-3.1-70b*\"]",
    "pool = \"large\"",
    "[[listener.route]]",
    "header = { name = \"X-Tier\", value = \"batch\" }",
    "pool = \"batch\"",
    "[[listener.route]]",
    "sni = [\"*.internal.example\"]",
];

#[test]
fn the_issue_example_compiles_in_order_with_the_defaults() {
    let mut routes: Vec<&str> = EXAMPLE.to_vec();
    routes.push("pool = \"tls-gpu\"");
    let c = ok(&refs(&config(
        &["peek_timeout = \"5s\"", "peek_max = \"16KiB\""],
        &routes,
    )));
    let r = c.listener_routes(0);
    assert!(r.needs_peek());
    assert_eq!(r.default_pool(), 0);
    let pools: Vec<usize> = r.rules().iter().map(|r| r.pool).collect();
    assert_eq!(pools, [1, 2, 3, 4, 5]);
    assert_eq!(
        r.rules()[0].matchers,
        [
            Matcher::PathPrefix(vec!["/v1/realtime".into()]),
            Matcher::WebSocket(true)
        ]
    );
    assert!(matches!(&r.rules()[3].matchers[0], Matcher::Header { name, .. } if name == "x-tier"));
    let s = r.settings();
    assert_eq!(
        (s.timeout, s.max, s.body_max, s.accept_proxy),
        (Duration::from_secs(5), 16384, 262_144, false)
    );
    assert_eq!(c.runtime.peek_memory_max, 64 << 20);
    let summary = c.summary();
    for needle in [
        "peek: timeout 5s, peek_max 16KiB, peek_body_max 256KiB",
        "route 1: path_prefix = \"/v1/realtime\", websocket = true -> pool \"realtime\"",
        "route 3: model = \"llama-3.1-70b*\" -> pool \"large\"",
        "route 4: header = { name = \"x-tier\", value = \"batch\" } -> pool \"batch\"",
        "route 5: sni = \"*.internal.example\" -> pool \"tls-gpu\"",
        "otherwise -> pool \"general\"",
        "peek_memory_max 64MiB",
    ] {
        assert!(
            summary.contains(needle),
            "summary lacks {needle:?}:\n{summary}"
        );
    }
}

#[test]
fn a_listener_with_nothing_to_decide_never_peeks() {
    let c = ok(&refs(&config(&[], &[])));
    assert!(!c.listener_routes(0).needs_peek());
    assert!(!c.summary().contains("peek:"));
    assert_eq!(c.pools[0].send_proxy, None);
    assert_eq!(c.pools[0].session_key, None);
    // A header key on a pool that does not hash is accepted and unused.
    let v = config(&[], &[]);
    let mut lines = refs(&v);
    lines.insert(2, "hash_key = \"header:x-session-id\"");
    let c = ok(&lines);
    assert!(!c.listener_routes(0).needs_peek());
}

#[test]
fn every_listener_key_is_used() {
    let v = config(
        &[
            "peek_timeout = \"250ms\"",
            "peek_max = 4096",
            "peek_body_max = \"1MiB\"",
            "accept_proxy = true",
        ],
        &[],
    );
    let mut lines = refs(&v);
    lines.insert(0, "[runtime]");
    lines.insert(1, "peek_memory_max = \"1GiB\"");
    let c = ok(&lines);
    let r = c.listener_routes(0);
    let s = r.settings();
    assert_eq!(
        (s.timeout, s.max, s.body_max, s.accept_proxy),
        (Duration::from_millis(250), 4096, 1 << 20, true)
    );
    assert!(r.needs_peek(), "accept_proxy alone peeks");
    assert_eq!(c.runtime.peek_memory_max, 1 << 30);
    assert!(c
        .summary()
        .contains("peek_max 4KiB, peek_body_max 1MiB, accept_proxy"));
}

#[test]
fn pool_keys_send_proxy_and_peeked_hash_keys() {
    let v = config(&[], &[]);
    let mut lines = refs(&v);
    // Pool "general" (lines 1-4): hash on a header, PROXY v2 to its backends.
    lines.splice(
        2..2,
        [
            "balance = \"hash\"",
            "hash_key = \"header:X-Session-Id\"",
            "send_proxy = \"v2\"",
        ],
    );
    let c = ok(&lines);
    let p = &c.pools[0];
    assert_eq!(
        p.session_key,
        Some(SessionKey::Header("x-session-id".into()))
    );
    assert_eq!(p.hash_key, HashKey::ClientIp, "the fallback");
    assert_eq!(p.send_proxy, Some(ProxyVersion::V2));
    let r = c.listener_routes(0);
    assert!(
        r.needs_peek(),
        "a header session key needs the request head"
    );
    assert_eq!(
        r.session_keys(),
        &[(0, SessionKey::Header("x-session-id".into()))]
    );
    let summary = c.summary();
    assert!(
        summary.contains("hash_key header:x-session-id (peeked; client_ip when absent)"),
        "{summary}"
    );
    assert!(summary.contains("send_proxy v2"), "{summary}");
    let mut lines = refs(&v);
    lines.splice(
        2..2,
        [
            "balance = \"hash\"",
            "hash_key = \"json:user\"",
            "send_proxy = \"v1\"",
        ],
    );
    let c = ok(&lines);
    assert_eq!(
        c.pools[0].session_key,
        Some(SessionKey::Json("user".into()))
    );
    assert_eq!(c.pools[0].send_proxy, Some(ProxyVersion::V1));
    assert_eq!(c.listener_routes(0).peek_bytes_max(), 16384 + 262_144);
}

#[test]
fn rule_errors_point_at_the_rule_or_the_value() {
    let route = |extra: &[&'static str]| {
        let mut r = vec!["[[listener.route]]"];
        r.extend_from_slice(extra);
        config(&[], &r)
    };
    let v = route(&["path_prefix = \"/x\"", "pool = \"nope\""]);
    let l = refs(&v);
    fails(&l, &at(&l, "pool = \"nope\"", "\"nope\""), &[
        "listener \"api\" route 1: `pool` names unknown pool \"nope\"; defined pools: \"batch\"",
    ]);
    let v = route(&["path_prefix = \"/x\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "[[listener.route]]", "["),
        &["route 1: missing required key `pool`"],
    );
    let v = route(&["pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "[[listener.route]]", "["),
        &["route 1: has no matcher", "sni, alpn"],
    );
    let v = route(&["sni = \"a.example\"", "path = \"/x\"", "pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "[[listener.route]]", "["),
        &["can never match: it mixes TLS matchers"],
    );
    let v = route(&["sni = [\"ok.example\", \"[a]\"]", "pool = \"embed\""]);
    let l = refs(&v);
    fails(&l, &at(&l, "sni =", "\"[a]\""), &[
        "route 1: `sni` pattern \"[a]\": `[` is not glob syntax here: only `*` and `?` are wildcards",
    ]);
    let v = route(&["sni = []", "pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "sni =", "[]"),
        &["`sni` must list at least one pattern"],
    );
    let v = route(&["host = \"api.example:8000\"", "pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "host =", "\"api"),
        &["`host` pattern \"api.example:8000\" is matched without a port"],
    );
    let v = route(&["path_prefix = \"v1\"", "pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "path_prefix", "\"v1\""),
        &["must start with \"/\""],
    );
    let v = route(&[
        "header = { name = \"x tier\", value = \"a\" }",
        "pool = \"embed\"",
    ]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "header =", "\"x tier\""),
        &["`header` name \"x tier\" is not a header name"],
    );
    let v = route(&["header = { name = \"x-tier\" }", "pool = \"embed\""]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "header =", "{"),
        &["missing required key `header.value`"],
    );
    let v = route(&["paths = \"/x\"", "pool = \"embed\""]);
    let l = refs(&v);
    fails(&l, &at(&l, "paths", "paths"), &["unknown key `paths`"]);
    let v = route(&["websocket = \"yes\"", "pool = \"embed\""]);
    let l = refs(&v);
    fails(&l, &at(&l, "websocket", "\"yes\""), &["`websocket`"]);
}

#[test]
fn unreachable_rules_name_the_rule_that_shadows_them() {
    let v = config(
        &[],
        &[
            "[[listener.route]]",
            "path_prefix = \"/\"",
            "pool = \"embed\"",
            "[[listener.route]]",
            "sni = \"a.example\"",
            "pool = \"tls-gpu\"",
            "[[listener.route]]",
            "websocket = true",
            "pool = \"realtime\"",
        ],
    );
    let l = refs(&v);
    let first = at(&l, "path_prefix = \"/\"", "p");
    let first_line = first.split(':').next().unwrap().to_string();
    let third = l.iter().rposition(|s| *s == "[[listener.route]]").unwrap() + 1;
    fails(&l, &format!("{third}:1"), &[
        &format!(
            "listener \"api\" route 3: can never match: route 1 (line {}) before it matches every HTTP request (path_prefix = \"/\")",
            first_line.parse::<usize>().unwrap() - 1
        ),
    ]);
    // The same matchers twice (in any order), or a more general rule first.
    let v = config(
        &[],
        &[
            "[[listener.route]]",
            "websocket = true",
            "pool = \"realtime\"",
            "[[listener.route]]",
            "path = \"/v1/realtime\"",
            "websocket = true",
            "pool = \"embed\"",
        ],
    );
    let l = refs(&v);
    let second = l.iter().rposition(|s| *s == "[[listener.route]]").unwrap() + 1;
    fails(
        &l,
        &format!("{second}:1"),
        &[
            "route 2: can never match: route 1",
            "takes every connection this one would (websocket = true)",
        ],
    );
    // A TLS rule after an HTTP catch-all is fine.
    let v = config(
        &[],
        &[
            "[[listener.route]]",
            "method = \"*\"",
            "pool = \"embed\"",
            "[[listener.route]]",
            "alpn = \"h2\"",
            "pool = \"tls-gpu\"",
        ],
    );
    assert_eq!(ok(&refs(&v)).listener_routes(0).rules().len(), 2);
}

#[test]
fn the_body_is_needed_where_peek_body_max_is_0() {
    let v = config(
        &["peek_body_max = 0"],
        &[
            "[[listener.route]]",
            "model = \"llama*\"",
            "pool = \"large\"",
        ],
    );
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "[[listener.route]]", "["),
        &["route 1: `model` reads the request body, but this listener's `peek_body_max` is 0"],
    );
    let v = config(&["peek_body_max = 0"], &[]);
    let mut l = refs(&v);
    l.splice(2..2, ["balance = \"hash\"", "hash_key = \"json:user\""]);
    fails(&l, &at(&l, "peek_body_max", "0"), &["`peek_body_max` is 0, but pool \"general\" it sends to hashes `hash_key = \"json:user\"`"]);
    // Without body rules, 0 is fine.
    let v = config(
        &["peek_body_max = 0"],
        &["[[listener.route]]", "path = \"/x\"", "pool = \"embed\""],
    );
    assert_eq!(ok(&refs(&v)).listener_routes(0).peek_bytes_max(), 16384);
}

#[test]
fn bad_sizes_keys_and_values() {
    let v = config(&["peek_max = \"16KB\""], &[]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "peek_max", "\"16KB\""),
        &[
            "listener \"api\": `peek_max` = \"16KB\" is not a valid size",
            "KiB",
        ],
    );
    let v = config(&["peek_max = 10"], &[]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "peek_max", "10"),
        &["`peek_max` must be from 1KiB to 1MiB, got 10"],
    );
    let v = config(&["peek_body_max = \"32MiB\""], &[]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "peek_body_max", "\"32MiB\""),
        &["`peek_body_max` must be from 0B to 16MiB, got \"32MiB\""],
    );
    let v = config(&["peek_timeout = \"0s\""], &[]);
    let l = refs(&v);
    fails(
        &l,
        &at(&l, "peek_timeout", "\"0s\""),
        &["`peek_timeout` must be greater than 0"],
    );
    let v = config(
        &[],
        &[
            "[[listener.route]]",
            "model = \"llama*\"",
            "pool = \"large\"",
        ],
    );
    let mut l = refs(&v);
    l.splice(0..0, ["[runtime]", "peek_memory_max = \"64KiB\""]);
    fails(&l, &at(&l, "peek_memory_max", "\"64KiB\""), &[
        "runtime: `peek_memory_max` (64KiB) is less than one peek of listener \"api\" needs (peek_max + peek_body_max = 272KiB)",
    ]);
    // A listener that reads no body needs only peek_max.
    let v = config(&["accept_proxy = true"], &[]);
    let mut l = refs(&v);
    l.splice(0..0, ["[runtime]", "peek_memory_max = \"16KiB\""]);
    assert_eq!(ok(&l).runtime.peek_memory_max, 16384);
    let v = config(&[], &[]);
    let mut l = refs(&v);
    l.insert(2, "send_proxy = \"v3\"");
    fails(
        &l,
        &at(&l, "send_proxy", "\"v3\""),
        &["pool \"general\": unknown `send_proxy` \"v3\"; allowed: \"v1\", \"v2\""],
    );
    for (bad, why) in [
        ("hash_key = \"header:\"", "must name a header"),
        ("hash_key = \"header:x y\"", "must name a header"),
        ("hash_key = \"json:\"", "must name a top-level JSON member"),
        ("hash_key = \"cookie:sid\"", "unknown `hash_key` \"cookie:sid\"; allowed: \"client_ip\", \"client_ip_port\", \"header:<name>\", \"json:<key>\""),
    ] {
        let mut l = refs(&v);
        l.insert(2, bad);
        fails(&l, &at(&l, "hash_key", "\""), &[why]);
    }
}

#[test]
fn the_shipped_example_documents_the_routing_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let c = load(&path).unwrap();
    let d = ok(&refs(&config(&[], &[])));
    assert_eq!(
        c.listener_routes(0).settings(),
        d.listener_routes(0).settings()
    );
    assert!(
        !c.listener_routes(0).needs_peek(),
        "the example's routes are commented out"
    );
    assert_eq!(c.runtime.peek_memory_max, d.runtime.peek_memory_max);
    assert_eq!(c.pools[0].send_proxy, None);
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "peek_timeout",
        "peek_max",
        "peek_body_max",
        "accept_proxy",
        "[[listener.route]]",
        "sni",
        "alpn",
        "method",
        "path_prefix",
        "host",
        "header",
        "websocket",
        "model",
        "peek_memory_max",
        "send_proxy",
        "header:x-session-id",
        "json:user",
    ] {
        assert!(
            text.contains(key),
            "config/ringlb.toml does not document {key}"
        );
    }
}
