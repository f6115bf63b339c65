//! The config layer seen from outside: valid files load with defaults applied, and every kind
//! of mistake yields one `file:line:column: message` line that points at the right place and
//! names the key.

mod common;

use common::config_check::*;
use ringlb::config::{load, parse, Balance, ConfigError, HashKey};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const LISTENER: [&str; 4] = [
    "[[listener]]",
    "name = \"llm\"",
    "bind = \"127.0.0.1:8080\"",
    "pool = \"gpu\"",
];
const POOL: [&str; 4] = [
    "[[pool]]",
    "name = \"gpu\"",
    "[[pool.backend]]",
    "addr = \"127.0.0.1:9001\"",
];

/// LISTENER, then POOL, then `extra` lines appended to the last backend: lines 1-4 are the
/// listener, 5-8 the pool, 9.. the extra lines.
fn base_with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&str> = LISTENER.into_iter().chain(POOL).collect();
    v.extend_from_slice(extra);
    v
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn shipped_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let c = load(&path).unwrap();
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!((l.name.as_str(), l.bind), ("llm", addr("127.0.0.1:8080")));
    let pool = &c.pools[l.pool];
    assert_eq!(pool.name, "gpu");
    assert_eq!(pool.balance, Balance::LeastConnections);
    let addrs: Vec<SocketAddr> = pool.backends.iter().map(|b| b.addr).collect();
    assert_eq!(
        addrs,
        ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"].map(addr)
    );
    // The example documents the defaults, so it must resolve exactly as an empty file would.
    let d = ok(&base_with(&[]));
    let (r, dr) = (&c.runtime, &d.runtime);
    assert_eq!(
        (
            r.workers,
            r.pin_workers,
            r.ring_entries,
            r.buffer_size,
            r.buffer_count,
            r.max_unsent
        ),
        (
            dr.workers,
            dr.pin_workers,
            dr.ring_entries,
            dr.buffer_size,
            dr.buffer_count,
            dr.max_unsent
        )
    );
    let dp = &d.pools[0];
    assert_eq!(
        (
            pool.connect_timeout,
            pool.idle_timeout,
            pool.retries,
            l.backlog
        ),
        (
            dp.connect_timeout,
            dp.idle_timeout,
            dp.retries,
            d.listeners[0].backlog
        )
    );
    assert_eq!(
        (
            pool.hash_key,
            pool.hash_balance_factor,
            pool.latency_decay,
            pool.slow_start,
            pool.queue_size,
            pool.queue_timeout,
            pool.max_connection_age,
            pool.max_connection_age_jitter,
        ),
        (
            dp.hash_key,
            dp.hash_balance_factor,
            dp.latency_decay,
            dp.slow_start,
            dp.queue_size,
            dp.queue_timeout,
            dp.max_connection_age,
            dp.max_connection_age_jitter,
        )
    );
    assert!(pool.backends.iter().all(|b| b.tier == 0));
    let summary = c.summary();
    for needle in [
        "listener \"llm\"",
        "pool \"gpu\"",
        "least_connections",
        "127.0.0.1:9003",
    ] {
        assert!(
            summary.contains(needle),
            "summary lacks {needle:?}:\n{summary}"
        );
    }
}

#[test]
fn defaults_are_applied() {
    let c = ok(&base_with(&[]));
    let r = &c.runtime;
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(r.workers, cpus);
    assert!(!r.pin_workers);
    assert_eq!(
        (r.ring_entries, r.buffer_size, r.buffer_count, r.max_unsent),
        (4096, 131072, 512, 262144)
    );
    let l = &c.listeners[0];
    assert_eq!((l.pool, l.backlog), (0, 4096));
    let p = &c.pools[0];
    assert_eq!(p.balance, Balance::LeastConnections);
    assert_eq!(p.connect_timeout, Duration::from_secs(3));
    assert_eq!(p.idle_timeout, Duration::from_secs(3600));
    assert_eq!(p.half_close_timeout, Duration::from_secs(60));
    assert_eq!((r.max_connections, l.max_connections), (0, 0));
    assert_eq!(p.retries, 2);
    assert_eq!(p.hash_key, HashKey::ClientIp);
    assert_eq!(p.hash_balance_factor, 1.25);
    assert_eq!(p.latency_decay, Duration::from_secs(10));
    assert_eq!(p.slow_start, Duration::ZERO);
    assert_eq!((p.queue_size, p.queue_timeout), (0, Duration::from_secs(5)));
    assert_eq!(
        (p.max_connection_age, p.max_connection_age_jitter),
        (None, Duration::ZERO)
    );
    let b = &p.backends[0];
    assert_eq!(
        (b.addr, b.weight, b.max_connections, b.tier),
        (addr("127.0.0.1:9001"), 1, 0, 0)
    );
}

#[test]
fn explicit_values_are_used() {
    let c = ok(&[
        "[runtime]",
        "workers = 3",
        "pin_workers = true",
        "ring_entries = 64",
        "buffer_size = 4096",
        "buffer_count = 32768",
        "max_unsent = 4096",
        "[[listener]]",
        "name = \"a\"",
        "bind = \"[::1]:0\"",
        "pool = \"second\"",
        "backlog = 1",
        "[[listener]]",
        "name = \"b\"",
        "bind = \"[::1]:0\"",
        "pool = \"first\"",
        "[[pool]]",
        "name = \"first\"",
        "backend = [{ addr = \"10.0.0.1:1\" }]",
        "[[pool]]",
        "name = \"second\"",
        "balance = \"round_robin\"",
        "connect_timeout = \"250ms\"",
        "idle_timeout = \"1h30m\"",
        "retries = 0",
        "[[pool.backend]]",
        "addr = \"[fe80::1]:9001\"",
        "weight = 1000000",
        "max_connections = 64",
    ]);
    let r = &c.runtime;
    assert_eq!(
        (
            r.workers,
            r.pin_workers,
            r.ring_entries,
            r.buffer_size,
            r.buffer_count,
            r.max_unsent
        ),
        (3, true, 64, 4096, 32768, 4096)
    );
    // Listeners resolve pool names to indices in file order of the pools.
    assert_eq!(c.listeners[0].pool, 1);
    assert_eq!(c.listeners[1].pool, 0);
    assert_eq!(c.listeners[0].backlog, 1);
    let p = &c.pools[1];
    assert_eq!(p.balance, Balance::RoundRobin);
    assert_eq!(p.connect_timeout, Duration::from_millis(250));
    assert_eq!(p.idle_timeout, Duration::from_secs(5400));
    assert_eq!(p.retries, 0);
    let b = &p.backends[0];
    assert_eq!(
        (b.addr, b.weight, b.max_connections),
        (addr("[fe80::1]:9001"), 1_000_000, 64)
    );
    assert_eq!(c.pools[0].backends[0].addr, addr("10.0.0.1:1"));
}

#[test]
fn invalid_toml() {
    fails(
        &["[[listener]]", "name = \"llm"],
        "2:12",
        &["invalid basic string"],
    );
    fails(&["[runtime", "workers = 1"], "1:9", &[]);
    fails(
        &["[[listener]]", "name = \"a\"", "name = \"b\""],
        "3:1",
        &["duplicate key `name`"],
    );
}

#[test]
fn wrong_value_types_name_the_key() {
    fails(
        &base_with(&["weight = \"2\""]),
        "9:10",
        &["`weight`", "invalid type"],
    );
    fails(
        &["[runtime]", "pin_workers = 1"],
        "2:15",
        &["`pin_workers`", "boolean"],
    );
    fails(&base_with(&["[pool]"]), "9:1", &["duplicate key `pool`"]);
    fails(&["runtime = 3"], "1:11", &["`runtime`", "[runtime] table"]);
    let mut lines = base_with(&[]);
    lines.insert(6, "idle_timeout = 60");
    fails(&lines, "7:16", &["`idle_timeout`", "duration string"]);
}

/// LISTENER, then a pool "gpu" whose own keys are `keys` (from line 7) and one backend.
fn pool_with(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&str> = LISTENER.to_vec();
    v.extend(["[[pool]]", "name = \"gpu\""]);
    v.extend_from_slice(keys);
    v.extend(["[[pool.backend]]", "addr = \"127.0.0.1:9001\""]);
    v
}

/// A `[runtime]` table with `keys` (from line 2), then LISTENER and POOL.
fn runtime_with(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["[runtime]"];
    v.extend_from_slice(keys);
    v.extend(LISTENER);
    v.extend(POOL);
    v
}

#[test]
fn unknown_keys_at_every_level() {
    let mut top = vec!["bogus = 1"];
    top.extend(base_with(&[]));
    fails(&top, "1:1", &["unknown key `bogus`"]);
    fails(
        &runtime_with(&["wokers = 2"]),
        "2:1",
        &["unknown key `wokers`", "`workers`"],
    );
    let mut listener: Vec<&str> = LISTENER.to_vec();
    listener.push("bakclog = 1");
    listener.extend(POOL);
    fails(&listener, "5:1", &["unknown key `bakclog`", "`backlog`"]);
    fails(
        &pool_with(&["balanse = \"round_robin\""]),
        "7:1",
        &["unknown key `balanse`"],
    );
    fails(
        &base_with(&["wieght = 2"]),
        "9:1",
        &["unknown key `wieght`", "`weight`"],
    );
}

#[test]
fn missing_required_keys_point_at_their_table() {
    for (missing, kept) in [
        ("name", ["bind = \"127.0.0.1:8080\"", "pool = \"gpu\""]),
        ("bind", ["name = \"llm\"", "pool = \"gpu\""]),
        ("pool", ["name = \"llm\"", "bind = \"127.0.0.1:8080\""]),
    ] {
        let mut lines = vec!["[[listener]]"];
        lines.extend(kept);
        lines.extend(POOL);
        let table = if missing == "name" {
            "listener 1"
        } else {
            "listener \"llm\""
        };
        let key = format!("missing required key `{missing}`");
        fails(&lines, "1:1", &[table, &key]);
    }
    let mut lines: Vec<&str> = LISTENER.to_vec();
    lines.extend(["[[pool]]", "[[pool.backend]]", "addr = \"127.0.0.1:9001\""]);
    fails(&lines, "5:1", &["pool 1: missing required key `name`"]);
    let mut lines: Vec<&str> = LISTENER.to_vec();
    lines.extend([
        "[[pool]]",
        "name = \"gpu\"",
        "[[pool.backend]]",
        "weight = 2",
    ]);
    fails(
        &lines,
        "7:1",
        &["pool \"gpu\" backend 1: missing required key `addr`"],
    );
}

#[test]
fn empty_names_are_rejected() {
    let mut lines = base_with(&[]);
    lines[1] = "name = \" \"";
    fails(&lines, "2:8", &["listener 1: `name` must not be empty"]);
    lines = base_with(&[]);
    lines[5] = "name = \"\"";
    fails(&lines, "6:8", &["pool 1: `name` must not be empty"]);
}

#[test]
fn duplicate_listener_name() {
    let mut lines: Vec<&str> = LISTENER.to_vec();
    lines.extend([
        "[[listener]]",
        "name = \"llm\"",
        "bind = \"127.0.0.1:8081\"",
        "pool = \"gpu\"",
    ]);
    lines.extend(POOL);
    fails(
        &lines,
        "6:8",
        &["listener \"llm\"", "duplicate listener `name`", "line 2"],
    );
}

#[test]
fn duplicate_pool_name() {
    let lines = base_with(&[
        "[[pool]]",
        "name = \"gpu\"",
        "[[pool.backend]]",
        "addr = \"127.0.0.1:9002\"",
    ]);
    fails(
        &lines,
        "10:8",
        &["pool \"gpu\"", "duplicate pool `name`", "line 6"],
    );
}

#[test]
fn duplicate_backend_addr_within_a_pool() {
    let lines = base_with(&["[[pool.backend]]", "addr = \"127.0.0.1:9001\""]);
    fails(
        &lines,
        "10:8",
        &[
            "pool \"gpu\" backend 2",
            "duplicate `addr` 127.0.0.1:9001",
            "backend 1",
        ],
    );
    // The same address in two different pools is fine.
    ok(&base_with(&[
        "[[pool]]",
        "name = \"cpu\"",
        "[[pool.backend]]",
        "addr = \"127.0.0.1:9001\"",
    ]));
}

#[test]
fn listeners_cannot_share_a_bind() {
    for (first, second) in [
        ("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.1:8080\""),
        ("bind = \"127.0.0.1:8080\"", "bind = \"0.0.0.0:8080\""),
        ("bind = \"[::]:8080\"", "bind = \"[::1]:8080\""),
    ] {
        let mut lines: Vec<&str> = LISTENER.to_vec();
        lines[2] = first;
        lines.extend(["[[listener]]", "name = \"two\"", second, "pool = \"gpu\""]);
        lines.extend(POOL);
        fails(
            &lines,
            "7:8",
            &["listener \"two\"", "`bind`", "listener \"llm\"", "line 3"],
        );
    }
    // Different ports, different IPs, or port 0 (a fresh port each) do not collide.
    for (first, second) in [
        ("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.1:8081\""),
        ("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.2:8080\""),
        ("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.1:0\""),
    ] {
        let mut lines: Vec<&str> = LISTENER.to_vec();
        lines[2] = first;
        lines.extend(["[[listener]]", "name = \"two\"", second, "pool = \"gpu\""]);
        lines.extend(POOL);
        assert_eq!(ok(&lines).listeners.len(), 2);
    }
}

#[test]
fn listener_naming_a_missing_pool() {
    let mut lines = base_with(&[]);
    lines[3] = "pool = \"cpu\"";
    fails(
        &lines,
        "4:8",
        &[
            "listener \"llm\"",
            "`pool`",
            "unknown pool \"cpu\"",
            "\"gpu\"",
        ],
    );
    fails(
        &LISTENER,
        "4:8",
        &["unknown pool \"gpu\"", "no [[pool]] is defined"],
    );
}

#[test]
fn pool_without_backends() {
    let mut lines: Vec<&str> = LISTENER.to_vec();
    lines.extend(["[[pool]]", "name = \"gpu\""]);
    fails(
        &lines,
        "6:8",
        &["pool \"gpu\"", "no backends", "[[pool.backend]]"],
    );
    lines.push("backend = []");
    fails(&lines, "6:8", &["pool \"gpu\"", "no backends"]);
}

#[test]
fn addresses_must_be_ip_and_port() {
    for bad in ["localhost:80", "1.2.3.4", "::1:80", "1.2.3.4:99999", ""] {
        let bind = format!("bind = {bad:?}");
        let mut lines: Vec<&str> = base_with(&[]);
        lines[2] = &bind;
        fails(
            &lines,
            "3:8",
            &["listener \"llm\"", "`bind`", "expected IP:port", bad],
        );

        if bad == "localhost:80" {
            // A backend may be a DNS name (tests/config_dns.rs); a bind may not.
            continue;
        }
        let addr = format!("addr = {bad:?}");
        let mut lines: Vec<&str> = base_with(&[]);
        lines[7] = &addr;
        fails(
            &lines,
            "8:8",
            &["pool \"gpu\" backend 1", "`addr`", "expected IP:port"],
        );
    }
    let mut lines = base_with(&[]);
    lines[7] = "addr = \"127.0.0.1:0\"";
    fails(&lines, "8:8", &["`addr`", "port 0"]);
}

#[test]
fn backend_weight_and_limits() {
    fails(
        &base_with(&["weight = 0"]),
        "9:10",
        &["pool \"gpu\" backend 1: `weight` must be at least 1"],
    );
    fails(
        &base_with(&["weight = 1000001"]),
        "9:10",
        &["`weight` must be at most 1000000"],
    );
    fails(
        &base_with(&["max_connections = -1"]),
        "9:19",
        &["`max_connections` must be at least 0"],
    );
}

#[test]
fn bad_and_zero_durations() {
    fails(
        &pool_with(&["connect_timeout = \"3x\""]),
        "7:19",
        &[
            "pool \"gpu\"",
            "`connect_timeout`",
            "not a valid duration",
            "unknown unit \"x\"",
        ],
    );
    fails(
        &pool_with(&["idle_timeout = \"3\""]),
        "7:16",
        &["`idle_timeout`", "missing unit"],
    );
    fails(
        &pool_with(&["connect_timeout = \"\""]),
        "7:19",
        &["`connect_timeout`", "empty"],
    );
    fails(
        &pool_with(&["idle_timeout = \"0s\""]),
        "7:16",
        &["`idle_timeout` must be greater than 0"],
    );
    fails(
        &pool_with(&["connect_timeout = \"0ms\""]),
        "7:19",
        &["`connect_timeout` must be greater than 0"],
    );
    fails(
        &pool_with(&["idle_timeout = \"9000h\""]),
        "7:16",
        &["`idle_timeout` must be at most"],
    );
    fails(
        &pool_with(&["half_close_timeout = \"0s\""]),
        "7:22",
        &[
            "pool \"gpu\"",
            "`half_close_timeout` must be greater than 0",
        ],
    );
    let c = ok(&pool_with(&["half_close_timeout = \"5m\""]));
    assert_eq!(c.pools[0].half_close_timeout, Duration::from_secs(300));
}

#[test]
fn unknown_balance_lists_the_allowed_names() {
    fails(
        &pool_with(&["balance = \"fastest\""]),
        "7:11",
        &[
            "pool \"gpu\"",
            "unknown `balance` \"fastest\"",
            "\"least_connections\", \"least_load\", \"round_robin\", \"power_of_two\", \"least_latency\", \
             \"random\", \"hash\"",
        ],
    );
    fails(
        &pool_with(&["retries = -1"]),
        "7:11",
        &["`retries` must be at least 0"],
    );
}

#[test]
fn runtime_values_out_of_range() {
    let cases: [(&str, &str, &str); 15] = [
        ("workers = -1", "2:11", "`workers` must be at least 0"),
        (
            "max_connections = -1",
            "2:19",
            "`max_connections` must be at least 0",
        ),
        (
            "max_connections = 20000000",
            "2:19",
            "`max_connections` must be at most 10000000",
        ),
        ("workers = 5000", "2:11", "`workers` must be at most 1024"),
        (
            "ring_entries = 100",
            "2:16",
            "`ring_entries` must be a power of two from 64 to 32768",
        ),
        (
            "ring_entries = 32",
            "2:16",
            "`ring_entries` must be a power of two",
        ),
        (
            "ring_entries = 65536",
            "2:16",
            "`ring_entries` must be a power of two",
        ),
        (
            "ring_entries = -4096",
            "2:16",
            "`ring_entries` must be a power of two",
        ),
        (
            "buffer_size = 1000",
            "2:15",
            "`buffer_size` must be at least 4096",
        ),
        (
            "buffer_size = 2000000",
            "2:15",
            "`buffer_size` must be at most 1048576",
        ),
        (
            "buffer_count = 8",
            "2:16",
            "`buffer_count` must be a power of two from 16 to 32768",
        ),
        (
            "buffer_count = 1000",
            "2:16",
            "`buffer_count` must be a power of two",
        ),
        (
            "max_unsent = 1000",
            "2:14",
            "`max_unsent` must be at least `buffer_size` (131072)",
        ),
        (
            "max_unsent = 5000000000",
            "2:14",
            "`max_unsent` must be at most 4294967295",
        ),
        // The default max_unsent (256 KiB) cannot hold one 1 MiB buffer.
        (
            "buffer_size = 1048576",
            "2:15",
            "set `max_unsent` to at least 1048576",
        ),
    ];
    for (line, at, needle) in cases {
        let err = fails(&runtime_with(&[line]), at, &["runtime: ", needle]);
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    }
    let c = ok(&runtime_with(&[
        "buffer_size = 1048576",
        "max_unsent = 1048576",
    ]));
    assert_eq!(
        (c.runtime.buffer_size, c.runtime.max_unsent),
        (1_048_576, 1_048_576)
    );
    let mut lines: Vec<&str> = LISTENER.to_vec();
    lines.push("backlog = 0");
    lines.extend(POOL);
    fails(
        &lines,
        "5:11",
        &["listener \"llm\": `backlog` must be at least 1"],
    );
}

#[test]
fn no_listener_at_all() {
    fails(&POOL, "1:1", &["no [[listener]]"]);
    let err = parse("", "empty.toml").unwrap_err();
    assert_eq!(err.location(), Some((1, 1)));
    assert!(
        err.to_string()
            .starts_with("empty.toml:1:1: no [[listener]]"),
        "{err}"
    );
}

#[test]
fn load_names_the_file_it_cannot_read() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-dir/ringlb.toml");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot read", path.display())),
        "{msg}"
    );
}

#[test]
fn load_uses_the_path_in_messages() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config-test");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-weight.toml");
    std::fs::write(&path, text(&base_with(&["weight = 0"]))).unwrap();
    let msg = load(&path).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "{}:9:10: pool \"gpu\" backend 1: `weight` must be at least 1, got 0",
            path.display()
        )
    );
}

/// Damaged files (cut anywhere, or missing any one line) load or fail cleanly, and every
/// failure points inside the text it was given.
#[test]
fn damaged_input_never_panics_and_errors_stay_in_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let full = std::fs::read_to_string(path).unwrap();
    let check = |text: &str| {
        if let Err(e) = parse(text, "t.toml") {
            let (line, column) = e.location().unwrap();
            let line_text = text.split('\n').nth(line - 1);
            let width = line_text.map_or(0, |l| l.chars().count());
            assert!(column <= width + 1, "{e} is past the end of {line_text:?}");
            assert!(!e.to_string().contains('\n'), "{e:?}");
        }
    };
    // Every 7th character keeps the test fast while still cutting keys, values and headers
    // at every kind of position.
    for (cut, _) in full.char_indices().step_by(7) {
        check(&full[..cut]);
    }
    check(&full);
    let lines: Vec<&str> = full.lines().collect();
    for skip in 0..lines.len() {
        let damaged: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        check(&damaged.join("\n"));
    }
}

#[test]
fn every_balance_name_parses() {
    for balance in Balance::ALL {
        let line: &'static str = Box::leak(format!("balance = \"{balance}\"").into_boxed_str());
        assert_eq!(ok(&pool_with(&[line])).pools[0].balance, balance);
        assert_eq!(Balance::from_name(balance.as_str()), Some(balance));
    }
}

#[test]
fn gpu_pool_keys_are_used() {
    let c = ok(&pool_with(&[
        "balance = \"hash\"",
        "hash_key = \"client_ip_port\"",
        "hash_balance_factor = 2",
        "latency_decay = \"30s\"",
        "slow_start = \"1m\"",
        "queue_size = 128",
        "queue_timeout = \"750ms\"",
        "max_connection_age = \"1h\"",
        "max_connection_age_jitter = \"5m\"",
    ]));
    let p = &c.pools[0];
    assert_eq!(p.balance, Balance::Hash);
    assert_eq!(p.hash_key, HashKey::ClientIpPort);
    assert_eq!(p.hash_balance_factor, 2.0, "an integer factor is accepted");
    assert_eq!(p.latency_decay, Duration::from_secs(30));
    assert_eq!(p.slow_start, Duration::from_secs(60));
    assert_eq!(p.queue_size, 128);
    assert_eq!(p.queue_timeout, Duration::from_millis(750));
    assert_eq!(p.max_connection_age, Some(Duration::from_secs(3600)));
    assert_eq!(p.max_connection_age_jitter, Duration::from_secs(300));
    let summary = c.summary();
    for needle in [
        "hash_key client_ip_port",
        "hash_balance_factor 2",
        "queue_size 128, queue_timeout 750ms",
        "max_connection_age 1h (+ up to 5m jitter)",
        "slow_start 1m",
        "tier 0",
    ] {
        assert!(
            summary.contains(needle),
            "summary lacks {needle:?}:\n{summary}"
        );
    }

    let c = ok(&pool_with(&[
        "hash_balance_factor = 10.0",
        "slow_start = \"0s\"",
        "max_connection_age_jitter = \"0s\"",
        "max_connection_age = \"10s\"",
    ]));
    let p = &c.pools[0];
    assert_eq!(p.hash_balance_factor, 10.0);
    assert_eq!(p.slow_start, Duration::ZERO);
    assert!(c.summary().contains("slow_start off"));
    let c = ok(&pool_with(&[
        "max_connection_age = \"10s\"",
        "max_connection_age_jitter = \"10s\"",
    ]));
    assert_eq!(
        c.pools[0].max_connection_age_jitter,
        Duration::from_secs(10)
    );
    let tiers = ok(&base_with(&["tier = 255"]));
    assert_eq!(tiers.pools[0].backends[0].tier, 255);
}

#[test]
fn bad_hash_keys() {
    fails(
        &pool_with(&["hash_key = \"source\""]),
        "7:12",
        &[
            "pool \"gpu\": unknown `hash_key` \"source\"",
            "allowed: \"client_ip\", \"client_ip_port\"",
        ],
    );
    fails(
        &pool_with(&["hash_key = 1"]),
        "7:12",
        &["`hash_key`", "invalid type"],
    );
    for (value, col) in [
        ("1.0", "23"),
        ("0.5", "23"),
        ("1", "23"),
        ("10.5", "23"),
        ("-2.0", "23"),
        ("nan", "23"),
        ("inf", "23"),
    ] {
        let line: &'static str =
            Box::leak(format!("hash_balance_factor = {value}").into_boxed_str());
        fails(
            &pool_with(&[line]),
            &format!("7:{col}"),
            &["pool \"gpu\": `hash_balance_factor` must be greater than 1.0 and at most 10.0"],
        );
    }
    fails(
        &pool_with(&["hash_balance_factor = \"1.5\""]),
        "7:23",
        &["`hash_balance_factor`", "invalid type"],
    );
}

#[test]
fn bad_gpu_durations() {
    fails(
        &pool_with(&["latency_decay = \"0s\""]),
        "7:17",
        &["`latency_decay` must be greater than 0"],
    );
    fails(
        &pool_with(&["latency_decay = \"10\""]),
        "7:17",
        &["`latency_decay`", "missing unit"],
    );
    fails(
        &pool_with(&["slow_start = \"fast\""]),
        "7:14",
        &["`slow_start` = \"fast\" is not a valid duration"],
    );
    fails(
        &pool_with(&["slow_start = \"9000h\""]),
        "7:14",
        &["`slow_start` must be at most"],
    );
    fails(
        &pool_with(&["queue_timeout = \"0ms\""]),
        "7:17",
        &["`queue_timeout` must be greater than 0"],
    );
    fails(
        &pool_with(&["max_connection_age = \"0s\""]),
        "7:22",
        &["`max_connection_age` must be greater than 0"],
    );
    fails(
        &pool_with(&["max_connection_age = 3600"]),
        "7:22",
        &["`max_connection_age`", "duration string"],
    );
    fails(
        &pool_with(&["max_connection_age_jitter = \"1s\""]),
        "7:29",
        &["`max_connection_age_jitter` = \"1s\" needs `max_connection_age`"],
    );
    fails(
        &pool_with(&[
            "max_connection_age = \"10m\"",
            "max_connection_age_jitter = \"11m\"",
        ]),
        "8:29",
        &["`max_connection_age_jitter` must be at most `max_connection_age` (10m), got \"11m\""],
    );
    fails(
        &pool_with(&["max_connection_age_jitter = \"-1s\""]),
        "7:29",
        &["`max_connection_age_jitter`", "not a valid duration"],
    );
}

#[test]
fn bad_queue_sizes_and_tiers() {
    fails(
        &pool_with(&["queue_size = -1"]),
        "7:14",
        &["pool \"gpu\": `queue_size` must be at least 0, got -1"],
    );
    fails(
        &pool_with(&["queue_size = 1000001"]),
        "7:14",
        &["`queue_size` must be at most 1000000"],
    );
    fails(
        &base_with(&["tier = 256"]),
        "9:8",
        &["pool \"gpu\" backend 1: `tier` must be at most 255, got 256"],
    );
    fails(
        &base_with(&["tier = -1"]),
        "9:8",
        &["`tier` must be at least 0"],
    );
    fails(
        &base_with(&["tier = \"primary\""]),
        "9:8",
        &["`tier`", "invalid type"],
    );
    fails(
        &pool_with(&["queue_sise = 3"]),
        "7:1",
        &["unknown key `queue_sise`", "`queue_size`"],
    );
}

#[test]
fn when_all_down_is_close_or_queue_and_queue_needs_a_queue() {
    assert!(
        !ok(&pool_with(&[])).pools[0].queue_when_all_down,
        "default: close"
    );
    let c = ok(&pool_with(&["queue_size = 4", "when_all_down = \"queue\""]));
    assert!(c.pools[0].queue_when_all_down);
    assert!(!ok(&pool_with(&["when_all_down = \"close\""])).pools[0].queue_when_all_down);
    // Line 7: the key after the listener (1-4) and the pool's header and name (5-6).
    fails(
        &pool_with(&["when_all_down = \"queue\""]),
        "7:17",
        &["`when_all_down` = \"queue\" needs a queue", "queue_size"],
    );
    fails(
        &pool_with(&["when_all_down = \"wait\""]),
        "7:17",
        &["unknown `when_all_down` \"wait\"", "\"close\", \"queue\""],
    );
}
