//! Several ringlb instances in front of one fleet, as operators run them when one edge host is
//! not enough (an NLB, ECMP or DNS in front of N balancers), with no state shared between them:
//! with `least_load` each sees the fleet's true load in the engines' own metrics; `hash` pools
//! place a key on the same backend on every instance (same ring from the same config). Real
//! processes and sockets; every wait has a deadline.

mod common;

use std::io::{Read, Write};

use common::engines::*;
use common::process::Proc;
use common::*;
use ringlb::tools::fleet::MockBackend;

/// Two ringlb processes in front of one fleet, clients split between them, one GPU loaded
/// from elsewhere: with `least_load` each instance sees the other's streams (and the phantom
/// load) in the engines' own counts, so the fleet stays even; with `least_connections` each
/// balances only its own streams and the loaded GPU drifts away from even.
fn two_instances(balance: &str) -> Vec<f64> {
    let gpus = [gpu("g0", 16, 0), gpu("g1", 16, 0), gpu("g2", 16, 8)];
    let refs: Vec<&MockBackend> = gpus.iter().collect();
    let text = config(balance, "/metrics", &refs);
    let (one, two) = (
        Proc::run("multi-1", &text, &[]),
        Proc::run("multi-2", &text, &[]),
    );
    for p in [&one, &two] {
        wait_fresh(admin_addr(p), 3);
    }
    let streams = open_paced(&[one.listener("api"), two.listener("api")], 36);
    let loads = settled(&refs, 44.0);
    drop(streams);
    loads
}

#[test]
fn two_instances_keep_the_fleet_even_with_least_load_and_drift_with_least_connections() {
    let even = 44.0 / 3.0;
    let within = |l: f64| (l - even).abs() <= 0.2 * even;
    let load_aware = two_instances("least_load");
    assert!(
        load_aware.iter().all(|&l| within(l)),
        "least_load: every GPU within 20% of {even:.1}: {load_aware:?}"
    );
    let blind = two_instances("least_connections");
    assert!(
        !within(blind[2]),
        "least_connections: the externally loaded GPU drifts: {blind:?}"
    );
}

#[test]
fn hash_pools_place_a_session_on_the_same_backend_on_every_instance() {
    let backends: Vec<std::net::SocketAddr> = (0..4).map(id_echo).collect();
    let mut text = String::from(
        "[runtime]\nworkers = 2\n[[listener]]\nname = \"api\"\nbind = \"127.0.0.1:0\"\n\
         pool = \"p\"\n[[pool]]\nname = \"p\"\nbalance = \"hash\"\nhash_key = \"header:x-session-id\"\n\
         hash_balance_factor = 10.0\n",
    );
    for b in &backends {
        text += &format!("[[pool.backend]]\naddr = \"{b}\"\n");
    }
    let (one, two) = (
        Proc::run("hash-1", &text, &[]),
        Proc::run("hash-2", &text, &[]),
    );
    let placed = |lb: std::net::SocketAddr, session: u32| -> u8 {
        let mut s = connect(lb);
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: t\r\nx-session-id: s{session}\r\n\r\n"
        )
        .unwrap();
        let mut id = [0u8; 1];
        s.read_exact(&mut id).expect("backend id");
        id[0]
    };
    let (a, b) = (one.listener("api"), two.listener("api"));
    let mut used = std::collections::HashSet::new();
    for session in 0..40 {
        let (x, y) = (placed(a, session), placed(b, session));
        assert_eq!(
            x, y,
            "session s{session}: backend {x} on one instance, {y} on the other"
        );
        used.insert(x);
    }
    assert!(
        used.len() >= 3,
        "40 sessions spread over the ring: {used:?}"
    );
}
