//! Balancing for GPU fleets through the real balancer: per-backend capacity with a pool queue,
//! fallback tiers, consistent hashing by client address, max connection age. Least latency has
//! its own file (`least_latency.rs`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;

/// True if the peer closes the stream (EOF or reset) before sending anything, false if it sends
/// a byte. Panics if it does neither within the stream's read timeout: a silent peer is not a
/// closed one, and must not let a test pass while the balancer closed nothing.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => true,
            ErrorKind::WouldBlock | ErrorKind::TimedOut => panic!(
                "peer neither closed nor sent within the deadline (read timeout {:?}): {e}",
                s.read_timeout().ok().flatten()
            ),
            _ => panic!("read failed, neither a close nor a byte: {e}"),
        },
    }
}

#[test]
fn a_full_pool_queues_the_client_and_dispatches_it_when_a_stream_ends() {
    let addrs: Vec<_> = (0..2).map(|i| hold_backend(i).addr).collect();
    let cfg = pool_config(
        "queue_size = 4\nqueue_timeout = \"10s\"",
        &["max_connections = 2", "max_connections = 2"],
    );
    let server = start(&cfg, &addrs);
    let to = addr(&server);
    let mut held: Vec<(TcpStream, u8)> = (0..4).map(|_| open_held(to)).collect();
    let mut fifth = connect(to);
    wait_for("fifth client queued", || server.queue_len(0) == 1);
    assert_eq!(active(&server), vec![2, 2]);
    let (_, freed) = held.remove(0);
    let mut id = [0u8; 1];
    fifth
        .read_exact(&mut id)
        .expect("dispatched once a stream ended");
    assert_eq!(id[0], freed, "it takes the slot that was freed");
    assert_eq!(server.queue_len(0), 0);
    assert_eq!(server.stats().queued, 1);
    assert!(server.queue_wait_histogram().len() == 1);
}

#[test]
fn a_queued_client_is_closed_after_queue_timeout() {
    let addrs = [hold_backend(0).addr];
    let cfg = pool_config(
        "queue_size = 4\nqueue_timeout = \"200ms\"",
        &["max_connections = 1"],
    );
    let server = start(&cfg, &addrs);
    let to = addr(&server);
    let _held = open_held(to);
    let mut waiting = connect(to);
    assert!(closed(&mut waiting));
    assert_eq!(server.stats().queue_timeouts, 1);
    wait_for("queue empty", || server.queue_len(0) == 0);
}

#[test]
fn a_full_queue_closes_the_client_at_once() {
    let addrs = [hold_backend(0).addr];
    let cfg = pool_config(
        "queue_size = 1\nqueue_timeout = \"10s\"",
        &["max_connections = 1"],
    );
    let server = start(&cfg, &addrs);
    let to = addr(&server);
    let _held = open_held(to);
    let _queued = connect(to);
    wait_for("one client queued", || server.queue_len(0) == 1);
    let mut third = connect(to);
    assert!(closed(&mut third));
    assert_eq!(server.stats().queue_full, 1);
}

#[test]
fn without_a_queue_a_full_pool_closes_the_client() {
    let addrs = [hold_backend(0).addr];
    let server = start(&pool_config("", &["max_connections = 1"]), &addrs);
    let to = addr(&server);
    let _held = open_held(to);
    let mut second = connect(to);
    assert!(closed(&mut second));
}

#[test]
fn higher_tiers_take_only_the_overflow() {
    let addrs: Vec<_> = (0..2).map(|i| hold_backend(i).addr).collect();
    let cfg = pool_config("", &["max_connections = 2", "tier = 1"]);
    let server = start(&cfg, &addrs);
    let to = addr(&server);
    let held: Vec<(TcpStream, u8)> = (0..4).map(|_| open_held(to)).collect();
    let ids: Vec<u8> = held.iter().map(|h| h.1).collect();
    assert_eq!(ids, vec![0, 0, 1, 1]);
}

#[test]
fn hashing_keeps_a_client_on_one_backend_and_spreads_clients() {
    let addrs: Vec<_> = (0..4).map(|i| hold_backend(i).addr).collect();
    let server = start(
        &pool_config("balance = \"hash\"", &["", "", "", ""]),
        &addrs,
    );
    let to = addr(&server);
    let from = |ip: u8| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let src: SocketAddr = format!("127.0.0.{ip}:0").parse().unwrap();
        s.bind(&src.into()).unwrap();
        s.connect(&to.into()).unwrap();
        let mut s: TcpStream = s.into();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut id = [0u8; 1];
        s.read_exact(&mut id).unwrap();
        drop(s);
        // Bounded load would move a client whose backend still counts its last stream.
        wait_for("stream released", || {
            active(&server).iter().sum::<u32>() == 0
        });
        id[0]
    };
    let first = from(1);
    for _ in 0..10 {
        assert_eq!(from(1), first, "same client, same backend");
    }
    let mut seen = std::collections::BTreeSet::new();
    for ip in 1..=32 {
        seen.insert(from(ip));
    }
    assert!(seen.len() >= 3, "32 clients reached only {seen:?}");
}

#[test]
fn streams_past_max_connection_age_close_at_a_quiet_moment() {
    let addrs = [hold_backend(0).addr];
    let cfg = pool_config("max_connection_age = \"200ms\"", &[""]);
    let server = start(&cfg, &addrs);
    let (mut s, _) = open_held(addr(&server));
    assert!(closed(&mut s), "an old, quiet stream is closed");
    assert_eq!(server.stats().age_closes, 1);
    wait_for("released", || active(&server) == vec![0]);
}

#[test]
fn a_busy_stream_past_max_connection_age_closes_at_the_hard_limit() {
    let cfg = pool_config("max_connection_age = \"200ms\"", &[""]);
    let server = start(&cfg, &[echo_backend()]);
    let mut s = connect(addr(&server));
    let started = std::time::Instant::now();
    // Never quiet for a second: a byte each 100 ms, echoed back.
    let mut open = true;
    while open && started.elapsed() < Duration::from_secs(10) {
        open = s.write_all(b"x").is_ok() && {
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(1))
        };
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!open, "stream was never closed");
    // Soft limit 200 ms, hard limit 200 ms + max(age/10, 1 s).
    let age = started.elapsed();
    assert!(
        age >= Duration::from_millis(1100),
        "closed after {age:?}, before the hard limit"
    );
    assert_eq!(server.stats().age_closes, 1);
}
