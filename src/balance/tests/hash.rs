//! Consistent hashing with bounded load: stable placement per client, spread over clients,
//! minimal movement when a backend leaves, and no backend far above its share when a few
//! keys bring most of the streams.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{build, spec3, spec_with};
use crate::balance::StrategyKind::Hash;
use crate::balance::{HashKey, Pick, PickRequest, Registry, Table};

fn client(i: u32) -> SocketAddr {
    let [_, a, b, c] = i.to_be_bytes();
    SocketAddr::from(([10, a, b, c], 40_000))
}

fn place(table: &Table, addr: SocketAddr) -> SocketAddr {
    table
        .pick(&PickRequest::new(0, 0).for_client(Some(addr)))
        .unwrap()
        .addr
}

#[test]
fn a_client_keeps_its_backend() {
    let (_r, table) = build(&spec3(Hash, &[(1, 0, 0); 4]));
    for i in 0..50 {
        let first = place(&table, client(i));
        for port in 1..20 {
            let again = SocketAddr::new(client(i).ip(), port);
            assert_eq!(place(&table, again), first, "client {i} moved");
        }
    }
    let (_r, by_port) = build(&spec_with(Hash, &[(1, 0, 0); 4], |p| {
        p.hash_key = HashKey::ClientIpPort
    }));
    let one_host: HashSet<SocketAddr> = (1..33)
        .map(|port| place(&by_port, SocketAddr::new(client(7).ip(), port)))
        .collect();
    assert!(
        one_host.len() >= 3,
        "client_ip_port spreads one host: {one_host:?}"
    );
}

#[test]
fn loopback_clients_spread() {
    let (_r, table) = build(&spec3(Hash, &[(1, 0, 0); 4]));
    let reached: HashSet<SocketAddr> = (1..=32u8)
        .map(|x| {
            place(
                &table,
                SocketAddr::from(([127, 0, 0, x], 50_000 + u16::from(x))),
            )
        })
        .collect();
    assert!(reached.len() >= 3, "{reached:?}");
}

#[test]
fn removing_a_backend_moves_only_its_keys() {
    const KEYS: u32 = 10_000;
    const N: usize = 4;
    let registry = Registry::new();
    let all = spec3(Hash, &[(1, 0, 0); N]);
    let before = Table::build_at(&all, &registry, 0);
    let placed: Vec<SocketAddr> = (0..KEYS).map(|i| place(&before, client(i))).collect();
    let removed = before.pool(0).unwrap().backend_addr(2).unwrap();
    let mut fewer = all.clone();
    fewer.pools[0].backends.remove(2);
    let after = Table::build_at(&fewer, &registry, 0);
    let mut moved = 0;
    for (i, &was) in placed.iter().enumerate() {
        let now = place(&after, client(i as u32));
        if now != was {
            assert_eq!(was, removed, "key {i} moved off a backend that stayed");
            moved += 1;
        }
    }
    let bound = 1.2 * f64::from(KEYS) / N as f64;
    assert!(
        moved > 0 && f64::from(moved) <= bound,
        "{moved} keys moved, bound {bound}"
    );
}

#[test]
fn bounded_load_caps_hot_keys() {
    for weights in [[1u32, 1, 1, 1], [1, 1, 2, 4]] {
        let backends: Vec<(u32, u32, u32)> = weights.iter().map(|&w| (w, 0, 0)).collect();
        let (_r, table) = build(&spec3(Hash, &backends));
        let hot: Vec<SocketAddr> = (0..2).map(client).collect();
        let owners: Vec<usize> = hot
            .iter()
            .map(|&c| {
                table
                    .pick(&PickRequest::new(0, 0).for_client(Some(c)))
                    .unwrap()
                    .backend
            })
            .collect();
        const HELD: u32 = 200;
        let held: Vec<Pick> = (0..HELD as usize)
            .map(|i| {
                table
                    .pick(&PickRequest::new(0, 0).for_client(Some(hot[i % 2])))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            held[..2].iter().map(|p| p.backend).collect::<Vec<_>>(),
            owners,
            "below the bound, keys stay on their owners"
        );
        let total: u32 = weights.iter().sum();
        for (i, b) in table.snapshot(0)[0].backends.iter().enumerate() {
            let share = f64::from(HELD) * f64::from(weights[i]) / f64::from(total);
            let bound = (1.25 * share).ceil() as u32 + 1;
            assert!(
                b.active <= bound,
                "{weights:?}: backend {i} holds {} > {bound}",
                b.active
            );
        }
    }
}
