//! The DNS keys of the config: a backend `addr` may be `name:port` (kept as a name, with its
//! entry's settings and `dns_refresh`), `[runtime] dns_servers`; each mistake is one
//! `file:line:column` line naming the key, and `ringlb check` exits 2 on it.

mod common;

use common::config_check::*;
use ringlb::config::{parse, DEFAULT_DNS_REFRESH};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// Lines 1-4 the listener, 5-6 the pool, then `pool_extra`, then one backend per `addrs`
/// entry (its `addr` line, then `backend_extra`).
fn config(pool_extra: &[&str], addrs: &[&str], backend_extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "[[listener]]",
        "name = \"llm\"",
        "bind = \"127.0.0.1:8080\"",
        "pool = \"gpu\"",
        "[[pool]]",
        "name = \"gpu\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(pool_extra.iter().map(|s| s.to_string()));
    for a in addrs {
        v.push("[[pool.backend]]".into());
        v.push(format!("addr = {a:?}"));
        v.extend(backend_extra.iter().map(|s| s.to_string()));
    }
    v
}

#[test]
fn a_name_is_kept_as_a_name_with_its_entry_settings() {
    let lines = config(
        &["dns_refresh = \"2s\""],
        &[
            "10.0.0.1:8000",
            "VLLM.gpu.svc.cluster.local:8000",
            "[::1]:9000",
        ],
        &["weight = 4", "max_connections = 8", "tier = 1"],
    );
    let c = parse(&text(&refs(&lines)), "t.toml").unwrap();
    let pool = &c.pools[0];
    let literal: Vec<SocketAddr> = pool.backends.iter().map(|b| b.addr).collect();
    assert_eq!(
        literal,
        vec![
            "10.0.0.1:8000".parse().unwrap(),
            "[::1]:9000".parse().unwrap()
        ]
    );
    assert_eq!(pool.names.len(), 1);
    let n = &pool.names[0];
    assert_eq!(n.label(), "vllm.gpu.svc.cluster.local:8000");
    assert_eq!((n.weight, n.max_connections, n.tier), (4, 8, 1));
    assert_eq!(n.refresh, Duration::from_secs(2));
    assert!(c.runtime.dns_servers.is_empty(), "default: the system's");
}

#[test]
fn dns_refresh_defaults_and_a_backend_overrides_its_pool() {
    let lines = config(&[], &["a.svc:80"], &[]);
    let c = parse(&text(&refs(&lines)), "t.toml").unwrap();
    assert_eq!(c.pools[0].names[0].refresh, DEFAULT_DNS_REFRESH);
    let lines = config(
        &["dns_refresh = \"10s\""],
        &["a.svc:80"],
        &["dns_refresh = \"250ms\""],
    );
    let c = parse(&text(&refs(&lines)), "t.toml").unwrap();
    assert_eq!(c.pools[0].names[0].refresh, Duration::from_millis(250));
}

#[test]
fn dns_servers_take_ip_or_ip_and_port() {
    let mut lines = vec![
        "[runtime]".to_string(),
        "dns_servers = [\"10.96.0.10\", \"127.0.0.1:5353\", \"[::1]:53\"]".into(),
    ];
    lines.extend(config(&[], &["a.svc:80"], &[]));
    let c = parse(&text(&refs(&lines)), "t.toml").unwrap();
    let want: Vec<SocketAddr> = ["10.96.0.10:53", "127.0.0.1:5353", "[::1]:53"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(c.runtime.dns_servers, want);
}

#[test]
fn bad_names_are_located_with_their_reason() {
    let cases = [
        ("gpu..svc:8000", "empty label"),
        ("gpu svc:8000", "only letters"),
        ("-gpu.svc:8000", "starts or ends with '-'"),
        ("10.0.0:8000", "looks like an IPv4 address"),
        ("gpu.svc", "the port is missing"),
        ("gpu.svc:http", "not a number"),
        ("gpu.svc:0", "port 0"),
    ];
    for (addr, why) in cases {
        let lines = config(&[], &[addr], &[]);
        fails(
            &refs(&lines),
            "8:8",
            &["pool \"gpu\" backend 1", "`addr`", why],
        );
    }
    let lines = config(&[], &["a.svc:80", "A.svc:80"], &[]);
    fails(
        &refs(&lines),
        "10:8",
        &["backend 2", "duplicate `addr` a.svc:80"],
    );
}

#[test]
fn bad_dns_refresh_and_servers_are_located() {
    let lines = config(&["dns_refresh = \"soon\""], &["a.svc:80"], &[]);
    fails(
        &refs(&lines),
        "7:15",
        &["pool \"gpu\"", "`dns_refresh`", "duration"],
    );
    let lines = config(&["dns_refresh = \"10ms\""], &["a.svc:80"], &[]);
    fails(
        &refs(&lines),
        "7:15",
        &["`dns_refresh` must be at least 50ms"],
    );
    let lines = config(&[], &["a.svc:80"], &["dns_refresh = \"0s\""]);
    fails(&refs(&lines), "9:15", &["backend 1", "`dns_refresh`"]);
    let lines = config(&[], &["10.0.0.1:80"], &["dns_refresh = \"1s\""]);
    fails(
        &refs(&lines),
        "9:15",
        &["`dns_refresh` applies to a DNS name"],
    );
    let mut lines = vec![
        "[runtime]".to_string(),
        "dns_servers = [\"127.0.0.1:53\", \"dns.example:53\"]".into(),
    ];
    lines.extend(config(&[], &["a.svc:80"], &[]));
    fails(
        &refs(&lines),
        "2:32",
        &["runtime", "`dns_servers`", "dns.example:53"],
    );
}

#[test]
fn ringlb_check_exits_2_at_a_bad_name() {
    let dir = std::env::temp_dir().join(format!("ringlb-config-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, text(&refs(&config(&[], &["gpu..svc:8000"], &[])))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["check", "--no-bind", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:8:8:") && err.contains("empty label"),
        "{err}"
    );
}
