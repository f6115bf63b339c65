//! Backends named by DNS, end to end: the real binary with `dns_servers` at an in-test DNS
//! server whose answer changes from 2 addresses to 3 and back (backends on 127.0.0.2-4, one
//! port). New streams follow the answer; a stream on an address that stays keeps its count and
//! its bytes; one on an address that left drains until the pool's drain timeout, then is cut
//! (`drained`); a failing server changes nothing; a name that does not resolve at start is
//! retried; `ringlb check` reports what names resolve to without failing on DNS.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;

use common::dns_server::DnsServer;
use common::process::{field, Proc};
use common::*;
use nix::sys::signal::Signal;

/// Says its id (the last byte of its IP), then echoes until EOF.
fn id_echo(l: TcpListener, id: u8) {
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let _ = s.write_all(&[id]);
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
}

/// Echo backends on 127.0.0.{2,3,4} with one port (a name's addresses share the entry's
/// port); the port is learnt from the first bind, and tried again if another IP has it taken.
fn backends_on_one_port() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = first.local_addr().unwrap().port();
        let (Ok(b3), Ok(b4)) = (
            TcpListener::bind(("127.0.0.3", port)),
            TcpListener::bind(("127.0.0.4", port)),
        ) else {
            continue;
        };
        id_echo(first, 2);
        id_echo(b3, 3);
        id_echo(b4, 4);
        return port;
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn config(dns: &DnsServer, port: u16) -> String {
    format!(
        "[runtime]\nworkers = 2\ndns_servers = [\"{}\"]\n[admin]\nbind = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\nbalance = \"round_robin\"\ndns_refresh = \"200ms\"\n\
         drain_timeout = \"1s\"\n[[pool.backend]]\naddr = \"{}:{port}\"\n",
        dns.addr,
        dns.name()
    )
}

fn open(to: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(to);
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

/// The ids `n` new streams land on (each closed again).
fn ids_of_new_streams(to: SocketAddr, n: usize) -> Vec<u8> {
    let mut ids: Vec<u8> = (0..n).map(|_| open(to).1).collect();
    ids.sort();
    ids
}

fn get(admin: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(admin).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

fn status(admin: SocketAddr) -> serde_json::Value {
    let body = get(admin, "/status");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// (addr, active, name) of every backend of pool `p` in `/status`.
fn status_backends(admin: SocketAddr) -> Vec<(String, u64, String)> {
    let s = status(admin);
    s["pools"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["addr"].as_str().unwrap().to_string(),
                b["active"].as_u64().unwrap(),
                b["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn backends_follow_the_answer_keep_their_counts_and_drain_when_they_leave() {
    let port = backends_on_one_port();
    let dns = DnsServer::start("gpu.dns.test", &[ip(2), ip(3)]);
    let name = format!("{}:{port}", dns.name());
    let p = Proc::run("dns-follow", &config(&dns, port), &[]);
    let to = p.listener("test");
    let admin: SocketAddr = field(&p.wait_line(&["admin API listening"]), "addr")
        .parse()
        .unwrap();
    let line = p.wait_line(&[&format!("pool p addr {name}:")]);
    assert!(
        line.contains(&format!("+127.0.0.2:{port} +127.0.0.3:{port}")),
        "{line}"
    );

    // Two addresses: round robin over both.
    assert_eq!(ids_of_new_streams(to, 4), vec![2, 2, 3, 3]);
    let (mut kept, kept_id) = open(to);
    let kept_addr = format!("127.0.0.{kept_id}:{port}");
    let backends = status_backends(admin);
    assert_eq!(backends.len(), 2, "{backends:?}");
    assert!(backends.iter().all(|(_, _, n)| n == &name), "{backends:?}");
    let active_of = |addr: &str| {
        status_backends(admin)
            .into_iter()
            .find(|(a, _, _)| a == addr)
            .map(|(_, n, _)| n)
    };
    wait_for("the held stream is counted", || {
        active_of(&kept_addr) == Some(1)
    });

    // Three addresses: the third gets streams; the held one keeps its count and its bytes.
    dns.set(&[ip(2), ip(3), ip(4)]);
    let (i, line) = p.wait_line_from(0, &[&format!("pool p addr {name}: +127.0.0.4:{port}")]);
    assert!(!line.contains(" -"), "nothing removed: {line}");
    assert_eq!(
        active_of(&kept_addr),
        Some(1),
        "the count survived the rebuild"
    );
    round_trip(&mut kept, b"still relaying across the change");
    let mut on4 = None;
    let mut seen = Vec::new();
    while on4.is_none() {
        let (s, id) = open(to);
        seen.push(id);
        if id == 4 {
            on4 = Some(s);
        }
        assert!(seen.len() <= 6, "127.0.0.4 never picked: {seen:?}");
    }
    let mut on4 = on4.unwrap();
    assert_eq!(active_of(&format!("127.0.0.4:{port}")), Some(1));
    let metrics = get(admin, "/metrics");
    assert!(
        metrics.contains(&format!("backend=\"127.0.0.4:{port}\"")),
        "/metrics shows the new address as a backend"
    );

    // Back to two: the removed address gets no new stream, its live one relays until the
    // drain timeout and is then cut with a reset (reason `drained`).
    dns.set(&[ip(2), ip(3)]);
    p.wait_line_from(i + 1, &[&format!("pool p addr {name}: -127.0.0.4:{port}")]);
    let ids = ids_of_new_streams(to, 6);
    assert!(
        !ids.contains(&4),
        "a vanished address got a new stream: {ids:?}"
    );
    round_trip(&mut on4, b"the vanished address's stream goes on for now");
    assert!(ends_with_reset(&mut on4), "cut at the drain timeout");
    p.wait_line(&["ringlb::access", "reason=drained"]);
    assert_eq!(active_of(&kept_addr), Some(1));
    round_trip(&mut kept, b"the kept address's stream is untouched");

    // The server fails: logged once, the last set stays, traffic flows to both.
    let before = p.lines_with(&["DNS: cannot resolve"]).len();
    assert_eq!(before, 0);
    dns.fail();
    p.wait_line(&["DNS: cannot resolve", &name]);
    let q = dns.queries();
    dns.wait_queries(q, 3);
    assert_eq!(
        p.lines_with(&["DNS: cannot resolve"]).len(),
        1,
        "logged once per transition, not per refresh"
    );
    assert_eq!(ids_of_new_streams(to, 4), vec![2, 2, 3, 3]);
    assert_eq!(status_backends(admin).len(), 2);
    dns.set(&[ip(2), ip(3)]);
    p.wait_line(&["DNS: the name resolves again"]);
    round_trip(&mut kept, b"and on");
}

#[test]
fn a_name_that_does_not_resolve_at_start_starts_empty_and_is_retried() {
    let port = backends_on_one_port();
    let dns = DnsServer::start("late.dns.test", &[]);
    dns.fail();
    let name = format!("{}:{port}", dns.name());
    let p = Proc::run("dns-late", &config(&dns, port), &[]);
    let to = p.listener("test");
    p.wait_line(&["DNS: cannot resolve", &name]);
    // No backend yet: the client is closed, nothing is relayed.
    let mut s = connect(to);
    let mut buf = [0u8; 1];
    assert!(
        !matches!(s.read(&mut buf), Ok(1)),
        "no backend can have answered"
    );
    dns.set(&[ip(3)]);
    p.wait_line(&[&format!("pool p addr {name}: +127.0.0.3:{port}")]);
    let (mut s, id) = open(to);
    assert_eq!(id, 3);
    round_trip(&mut s, b"served once the name resolves");
}

#[test]
fn a_reload_resolves_names_at_once_and_drains_the_addresses_of_a_name_it_drops() {
    let port = backends_on_one_port();
    let dns = DnsServer::start("gpu.dns.test", &[ip(2)]);
    let name = format!("{}:{port}", dns.name());
    // Refreshed hourly: only the reload can explain a prompt new answer.
    let named = config(&dns, port).replace("dns_refresh = \"200ms\"", "dns_refresh = \"1h\"");
    let p = Proc::run("dns-reload", &named, &[]);
    let to = p.listener("test");
    p.wait_line(&[&format!("pool p addr {name}: +127.0.0.2:{port}")]);
    let (mut held, id) = open(to);
    assert_eq!(id, 2);

    dns.set(&[ip(2), ip(4)]);
    p.signal(Signal::SIGHUP);
    p.wait_line(&[&format!("pool p addr {name}: +127.0.0.4:{port}")]);

    // The name gives way to a literal address: its addresses drain, new streams go to .3.
    let literal = named.replace(
        &format!("addr = \"{name}\""),
        &format!("addr = \"127.0.0.3:{port}\""),
    );
    std::fs::write(&p.config, literal).unwrap();
    p.signal(Signal::SIGHUP);
    let line = p.wait_line(&["config reloaded", "removed (its addresses drain)"]);
    assert!(line.contains(&format!("name {name} removed")), "{line}");
    assert_eq!(ids_of_new_streams(to, 3), vec![3, 3, 3]);
    round_trip(
        &mut held,
        b"a dropped name's stream relays until the drain timeout",
    );
    assert!(ends_with_reset(&mut held), "then it is cut");
}

#[test]
fn check_reports_what_names_resolve_to_and_does_not_fail_on_dns() {
    let port = backends_on_one_port();
    let dns = DnsServer::start("gpu.dns.test", &[ip(2), ip(3)]);
    let dir = common::process::temp_dir("dns-check");
    let path = dir.join("ringlb.toml");
    let other = format!("[[pool.backend]]\naddr = \"missing.dns.test:{port}\"\n");
    std::fs::write(&path, config(&dns, port) + &other).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "dns: pool \"p\" gpu.dns.test:{port} -> 127.0.0.2:{port}, 127.0.0.3:{port}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "dns: pool \"p\" missing.dns.test:{port}: cannot resolve now"
        )),
        "{stdout}"
    );
}
