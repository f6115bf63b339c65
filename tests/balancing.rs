//! Where streams land, through the real balancer: least-connections with long-lived streams
//! (plain and weighted), round robin counted across two workers, and a refusing backend that
//! clients never notice.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;

fn pool(balance: &str, weights: &[u32]) -> String {
    let weights: Vec<String> = weights.iter().map(|w| format!("weight = {w}")).collect();
    let keys: Vec<&str> = weights.iter().map(String::as_str).collect();
    pool_config(&format!("balance = \"{balance}\""), &keys)
}

fn counts(ids: &[u8], n: usize) -> Vec<usize> {
    (0..n)
        .map(|b| ids.iter().filter(|&&i| i as usize == b).count())
        .collect()
}

#[test]
fn least_connections_refills_the_emptied_backend() {
    let backends: Vec<_> = (0..3).map(hold_backend).collect();
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let server = start(&pool("least_connections", &[1, 1, 1]), &addrs);
    let to = addr(&server);
    let mut held: Vec<(TcpStream, u8)> = (0..30).map(|_| open_held(to)).collect();
    let ids: Vec<u8> = held.iter().map(|h| h.1).collect();
    assert_eq!(counts(&ids, 3), vec![10, 10, 10]);
    assert_eq!(active(&server), vec![10, 10, 10]);

    held.retain(|(_, id)| *id != 1);
    wait_for("backend 1 emptied", || {
        active(&server) == vec![10, 0, 10]
            && backends[1].open.load(std::sync::atomic::Ordering::SeqCst) == 0
    });
    let next: Vec<u8> = (0..10)
        .map(|_| open_held(to))
        .map(|(s, id)| {
            held.push((s, id));
            id
        })
        .collect();
    assert_eq!(
        next,
        vec![1; 10],
        "the 10 new streams all go to the emptied backend"
    );
    drop(held);
    wait_for("all released", || active(&server) == vec![0, 0, 0]);
}

#[test]
fn weighted_least_connections_holds_one_two_three() {
    let addrs: Vec<_> = (0..3).map(|i| hold_backend(i).addr).collect();
    let server = start(&pool("least_connections", &[1, 2, 3]), &addrs);
    let to = addr(&server);
    let held: Vec<(TcpStream, u8)> = (0..60).map(|_| open_held(to)).collect();
    let ids: Vec<u8> = held.iter().map(|h| h.1).collect();
    assert_eq!(counts(&ids, 3), vec![10, 20, 30]);
    assert_eq!(active(&server), vec![10, 20, 30]);
}

#[test]
fn round_robin_spreads_evenly_across_workers() {
    let addrs: Vec<_> = (0..3).map(|i| hold_backend(i).addr).collect();
    let server = start(&pool("round_robin", &[1, 1, 1]), &addrs);
    let to = addr(&server);
    // Close each stream before the next: only the shared cursor can make this even.
    let ids: Vec<u8> = (0..30).map(|_| open_held(to).1).collect();
    assert_eq!(counts(&ids, 3), vec![10, 10, 10]);
}

#[test]
fn refused_connects_are_retried_invisibly_and_the_backend_goes_down() {
    let (_refuser, refused) = refusing_backend();
    let server = start(
        &pool("round_robin", &[1, 1, 1]),
        &[refused, echo_backend(), echo_backend()],
    );
    let to = addr(&server);
    let mut failures = 0;
    for i in 0..100u32 {
        let mut s = connect(to);
        let msg = format!("ping {i}");
        let ok = s.write_all(msg.as_bytes()).is_ok() && {
            let mut buf = vec![0u8; msg.len()];
            s.read_exact(&mut buf).is_ok() && buf == msg.as_bytes()
        };
        if !ok {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "clients saw failed attempts");
    let snap = server.table().load().snapshot(ringlb::clock::now_ms());
    assert!(
        snap[0].backends[0].down,
        "refusing backend marked down: {snap:?}"
    );
    assert!(server.stats().connect_failures >= 3);
    wait_for("released", || active(&server) == vec![0, 0, 0]);
}
