//! Live reload of the real binary (SIGHUP and `POST /reload`): backends added, removed and
//! reweighted under load with no stream cut and no byte changed; a broken file refused with
//! its line and column while the old config keeps serving; pools that move in the file keep
//! serving the right listener.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;

use common::process::{field, Proc};
use common::*;
use nix::sys::signal::Signal;

fn pool(name: &str, backends: &[(SocketAddr, u32)]) -> String {
    let mut t = format!("[[pool]]\nname = \"{name}\"\nbalance = \"round_robin\"\n");
    for (a, w) in backends {
        t += &format!("[[pool.backend]]\naddr = \"{a}\"\nweight = {w}\n");
    }
    t
}

fn head(listener_pool: &str) -> String {
    format!(
        "[runtime]\nworkers = 2\n[admin]\nbind = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"{listener_pool}\"\n"
    )
}

fn open(to: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(to);
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

/// Sends `data` and FIN, and checks the echo byte for byte.
fn finish(mut s: TcpStream, data: Vec<u8>) {
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let got = read_hash(&mut s).expect("the stream ends cleanly");
    writer.join().unwrap();
    assert_eq!(got, (hash(&data), data.len() as u64));
}

fn admin_addr(p: &Proc) -> SocketAddr {
    field(&p.wait_line(&["admin API listening"]), "addr")
        .parse()
        .unwrap()
}

fn post_reload(admin: SocketAddr) -> (u16, String) {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn sighup_adds_removes_and_reweights_backends_under_load_cutting_nothing() {
    let b: Vec<SocketAddr> = (0..4).map(id_echo).collect();
    let before = head("p") + &pool("p", &[(b[0], 1), (b[1], 1), (b[2], 1)]);
    let p = Proc::run("reload", &before, &[]);
    let to = p.listener("test");
    let live: Vec<(TcpStream, u8, Vec<u8>)> = (0..200u64)
        .map(|i| {
            let (mut s, id) = open(to);
            let data = pattern(i, 32 * 1024 + i as usize);
            round_trip(&mut s, &data[..100]);
            (s, id, data)
        })
        .collect();
    assert!(
        live.iter().any(|(_, id, _)| *id == 2),
        "backend 2 has live streams"
    );
    // Backend 2 removed, 3 added, 0 weighted 3.
    let after = head("p") + &pool("p", &[(b[0], 3), (b[1], 1), (b[3], 1)]);
    std::fs::write(&p.config, after).unwrap();
    p.signal(Signal::SIGHUP);
    let line = p.wait_line(&["config reloaded"]);
    assert!(line.contains(&format!("{} removed", b[2])), "{line}");
    assert!(line.contains(&format!("{} added", b[3])), "{line}");
    assert!(line.contains(&format!("{} changed", b[0])), "{line}");
    // New streams follow the new config: none to the removed backend, 3:1:1 otherwise.
    let mut seen = [0usize; 4];
    for _ in 0..50 {
        let (mut s, id) = open(to);
        seen[usize::from(id)] += 1;
        round_trip(&mut s, b"new");
    }
    assert_eq!(
        seen[2], 0,
        "the removed backend gets no new stream: {seen:?}"
    );
    assert_eq!(
        (seen[0], seen[1], seen[3]),
        (30, 10, 10),
        "weights 3:1:1 over 50"
    );
    // Every live stream, on the removed backend too, finishes byte for byte.
    let done: Vec<_> = live
        .into_iter()
        .map(|(s, _, data)| thread::spawn(move || finish(s, data[100..].to_vec())))
        .collect();
    for d in done {
        d.join().unwrap();
    }
    // 200 live streams and 50 new ones, each closed by its client after the last byte.
    wait_for("250 access lines", || {
        p.lines_with(&["ringlb::access"]).len() == 250
    });
    assert_eq!(
        p.lines_with(&["ringlb::access", "reason=client_fin"]).len(),
        250,
        "no stream cut"
    );
}

#[test]
fn a_broken_config_is_refused_with_its_line_and_the_old_one_keeps_serving() {
    let b0 = id_echo(0);
    let p = Proc::run("reload-bad", &(head("p") + &pool("p", &[(b0, 1)])), &[]);
    let (admin, to) = (admin_addr(&p), p.listener("test"));
    let (mut s, _) = open(to);
    round_trip(&mut s, b"before");
    let broken = head("p") + &pool("p", &[(b0, 1)]).replace("weight = 1", "weight = \"heavy\"");
    std::fs::write(&p.config, &broken).unwrap();
    p.signal(Signal::SIGHUP);
    let line = p.wait_line(&["reload refused"]);
    assert!(
        line.contains("ringlb.toml:14:10"),
        "file:line:col in {line}"
    );
    let (status, body) = post_reload(admin);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("weight"), "{body}");
    round_trip(&mut s, b"still relaying");
    let (mut again, id) = open(to);
    assert_eq!(id, 0);
    round_trip(&mut again, b"still accepting");
    // Fixed: POST /reload applies it.
    let b1 = id_echo(1);
    std::fs::write(&p.config, head("p") + &pool("p", &[(b1, 1)])).unwrap();
    let (status, body) = post_reload(admin);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{b1} added")), "{body}");
    let (_, id) = open(to);
    assert_eq!(id, 1, "new streams go to the new backend");
    round_trip(&mut s, b"the old stream goes on");
}

#[test]
fn pools_that_move_in_the_file_keep_serving_their_listener() {
    let (a, b) = (id_echo(0), id_echo(1));
    let before = head("pb") + &pool("pa", &[(a, 1)]) + &pool("pb", &[(b, 1)]);
    let p = Proc::run("reload-order", &before, &[]);
    let to = p.listener("test");
    assert_eq!(open(to).1, 1);
    // Same pools the other way round, then pa removed and the listener moved to a new pool.
    std::fs::write(
        &p.config,
        head("pb") + &pool("pb", &[(b, 1)]) + &pool("pa", &[(a, 1)]),
    )
    .unwrap();
    p.signal(Signal::SIGHUP);
    p.wait_line(&["config reloaded"]);
    assert_eq!(open(to).1, 1, "pb still serves the listener");
    let c = id_echo(2);
    std::fs::write(
        &p.config,
        head("pc") + &pool("pb", &[(b, 1)]) + &pool("pc", &[(c, 1)]),
    )
    .unwrap();
    p.signal(Signal::SIGHUP);
    let (i, _) = p.wait_line_from(0, &["config reloaded"]);
    p.wait_line_from(i + 1, &["config reloaded"]);
    assert_eq!(open(to).1, 2, "the listener now sends to pc");
}

#[test]
fn a_removed_backend_keeps_its_streams_until_the_pools_drain_timeout() {
    let (b0, b1) = (id_echo(0), id_echo(1));
    let pool_keys = |backends: &[(SocketAddr, u32)]| {
        pool("p", backends).replace(
            "balance = \"round_robin\"\n",
            "balance = \"round_robin\"\ndrain_timeout = \"1s\"\n",
        )
    };
    let p = Proc::run(
        "reload-drain",
        &(head("p") + &pool_keys(&[(b0, 1), (b1, 1)])),
        &[],
    );
    let to = p.listener("test");
    let (mut on0, mut on1) = (None, None);
    while on0.is_none() || on1.is_none() {
        let (s, id) = open(to);
        if id == 0 {
            on0 = Some(s)
        } else {
            on1 = Some(s)
        }
    }
    let (mut on0, mut on1) = (on0.unwrap(), on1.unwrap());
    std::fs::write(&p.config, head("p") + &pool_keys(&[(b0, 1)])).unwrap();
    p.signal(Signal::SIGHUP);
    p.wait_line(&["config reloaded"]);
    round_trip(&mut on1, b"still relaying right after the reload");
    // Cut at the drain timeout (checked every 2 s), with a reset and reason `drained`.
    assert!(
        ends_with_reset(&mut on1),
        "a drained stream ends with a reset"
    );
    p.wait_line(&["ringlb::access", "reason=drained"]);
    round_trip(&mut on0, b"the kept backend's stream goes on");
}

#[test]
fn a_reload_adds_and_removes_listeners_live() {
    let b0 = id_echo(0);
    let one = head("p") + &pool("p", &[(b0, 1)]);
    let p = Proc::run("reload-listeners", &one, &[]);
    let first = p.listener("test");
    let two = one.replace(
        "[[pool]]",
        "[[listener]]\nname = \"two\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n[[pool]]",
    );
    std::fs::write(&p.config, &two).unwrap();
    p.signal(Signal::SIGHUP);
    let line = p.wait_line(&["config reloaded"]);
    assert!(line.contains("listener two added"), "{line}");
    let second: SocketAddr = field(&p.wait_line(&["listening", "listener=two "]), "addr")
        .parse()
        .unwrap();
    let (mut on_two, id) = open(second);
    assert_eq!(id, 0);
    round_trip(&mut on_two, b"through the new listener");
    // Removed again: the port refuses new clients; the stream on it goes on.
    std::fs::write(&p.config, &one).unwrap();
    p.signal(Signal::SIGHUP);
    let (i, _) = p.wait_line_from(0, &["stopped accepting", "listener=1 "]);
    p.wait_line_from(i + 1, &["stopped accepting", "listener=1 "]);
    assert!(
        matches!(TcpStream::connect(second), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a removed listener refuses new clients"
    );
    round_trip(&mut on_two, b"its stream goes on");
    let (mut s, _) = open(first);
    round_trip(&mut s, b"the first listener is untouched");
}

fn status(admin: SocketAddr) -> serde_json::Value {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn status_listeners(admin: SocketAddr) -> Vec<(String, String)> {
    status(admin)["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or("").to_string(),
                l["addr"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn status_lists_a_listener_a_reload_added_and_drops_one_it_removed() {
    let b0 = id_echo(0);
    let one = head("p") + &pool("p", &[(b0, 1)]);
    let p = Proc::run("reload-status", &one, &[]);
    let admin = admin_addr(&p);
    let first = p.listener("test").to_string();
    assert_eq!(
        status_listeners(admin),
        vec![("test".into(), first.clone())]
    );
    let two = one.replace(
        "[[pool]]",
        "[[listener]]\nname = \"two\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n[[pool]]",
    );
    std::fs::write(&p.config, &two).unwrap();
    assert_eq!(post_reload(admin).0, 200);
    let second = field(&p.wait_line(&["listening", "listener=two "]), "addr");
    assert_eq!(
        status_listeners(admin),
        vec![("test".into(), first.clone()), ("two".into(), second)]
    );
    std::fs::write(&p.config, &one).unwrap();
    assert_eq!(post_reload(admin).0, 200);
    assert_eq!(status_listeners(admin), vec![("test".into(), first)]);
}

#[test]
fn a_reload_moves_a_listener_to_a_new_address_and_its_streams_go_on() {
    let b0 = id_echo(0);
    let one = head("p") + &pool("p", &[(b0, 1)]);
    let p = Proc::run("reload-move", &one, &[]);
    let admin = admin_addr(&p);
    let old = p.listener("test");
    let (mut s, id) = open(old);
    assert_eq!(id, 0);
    let moved = one.replacen(
        "name = \"test\"\nbind = \"127.0.0.1:0\"",
        "name = \"test\"\nbind = \"127.0.0.2:0\"",
        1,
    );
    assert_ne!(moved, one, "the listener's bind is in the file");
    std::fs::write(&p.config, &moved).unwrap();
    let (code, body) = post_reload(admin);
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("needs a restart"), "{body}");
    let (_, line) = p.wait_line_from(0, &["listening", "listener=test ", "addr=127.0.0.2:"]);
    let new: SocketAddr = field(&line, "addr").parse().unwrap();
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    let (mut on_new, _) = open(new);
    round_trip(&mut on_new, b"on the new address");
    let (i, _) = p.wait_line_from(0, &["stopped accepting", "listener=0 "]);
    p.wait_line_from(i + 1, &["stopped accepting", "listener=0 "]);
    assert!(
        matches!(TcpStream::connect(old), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the old address refuses new clients"
    );
    round_trip(&mut s, b"the stream on the old address goes on");
    assert_eq!(
        status_listeners(admin),
        vec![("test".into(), new.to_string())]
    );
}
