//! Many workers picking, holding and releasing on one shared table while another thread keeps
//! swapping in rebuilt tables from the same registry (with a backend removed every other
//! time). Checks, inside the loop, that no limited backend ever goes past max_connections and
//! that no count drops below what this thread alone holds; at the end every count is exactly 0.
//! A doubled release trips the below-own-holdings check (or the debug assert), a lost one the
//! final check, and a non-atomic limit the max check. One pool per strategy; some backends sit
//! in fallback tiers, half the pools ramp new backends (slow start), picks carry client
//! addresses (for `hash`) and feed latency samples (for `least_latency`). Since the limited
//! backends never go down, a failed pick must always say `AllFull`, never `Unavailable`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringlb::balance::{
    BackendSpec, HashKey, HealthPolicy, NoPick, Pick, PickRequest, PoolSpec, Registry, SharedTable,
    StrategyKind, Table, TableSpec,
};
use ringlb::clock;

const WORKERS: usize = 4;
const OPS_PER_WORKER: usize = 200_000;
const MAX_HELD: usize = 12;

fn addr(pool: usize, i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], (20_000 + pool * 100 + i) as u16))
}

/// (weight, max_connections, tier) per backend; small limits so the limit is hit all the
/// time, and tiers so that overflow crosses them.
const BACKENDS: [(u32, u32, u32); 6] = [
    (1, 2, 0),
    (3, 3, 0),
    (1, 0, 2),
    (2, 1, 1),
    (5, 4, 0),
    (1, 0, 2),
];

const KINDS: [StrategyKind; 6] = [
    StrategyKind::LeastConnections,
    StrategyKind::RoundRobin,
    StrategyKind::PowerOfTwo,
    StrategyKind::LeastLatency,
    StrategyKind::Random,
    StrategyKind::Hash,
];

/// `generation` varies weights and drops backend 5 on odd generations (so it ramps back in
/// on even ones, in the pools with slow start).
fn spec(generation: usize) -> TableSpec {
    let pools = KINDS
        .iter()
        .enumerate()
        .map(|(p, &strategy)| PoolSpec {
            name: format!("pool{p}"),
            strategy,
            backends: BACKENDS
                .iter()
                .enumerate()
                .filter(|(i, _)| generation % 2 == 0 || *i != 5)
                .map(|(i, &(weight, max_connections, tier))| BackendSpec {
                    addr: addr(p, i),
                    weight: weight + (generation % 3) as u32,
                    max_connections,
                    tier,
                    drain: false,
                })
                .collect(),
            hash_key: HashKey::ClientIpPort,
            hash_balance_factor: 1.25,
            latency_decay: Duration::from_millis(50),
            slow_start: Duration::from_millis(if p % 2 == 0 { 20 } else { 0 }),
            passive: None,
            check: None,
            count: Default::default(),
            least_load: Default::default(),
            engine: None,
        })
        .collect();
    TableSpec {
        pools,
        // Millisecond backoffs so the flaky backend flaps down and up during the run.
        health: HealthPolicy {
            fail_threshold: 3,
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            early_close: false,
        },
    }
}

fn limits() -> HashMap<SocketAddr, u32> {
    (0..KINDS.len())
        .flat_map(|p| (0..BACKENDS.len()).map(move |i| (addr(p, i), BACKENDS[i].1)))
        .collect()
}

/// Odd seeds load through a per-worker `TableCache`, even seeds through `SharedTable::load`.
fn worker(shared: &SharedTable, seed: u64, limits: &HashMap<SocketAddr, u32>) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cache = (seed % 2 == 1).then(|| shared.cache());
    let mut held: Vec<Pick> = Vec::with_capacity(MAX_HELD);
    let mut mine: HashMap<SocketAddr, u32> = HashMap::new();
    let mut picks = 0;
    for _ in 0..OPS_PER_WORKER {
        if held.len() < MAX_HELD && rng.gen_bool(0.55) {
            let table: Arc<Table> = match &mut cache {
                Some(cache) => cache.load().clone(),
                None => shared.load_full(),
            };
            let pool_idx = rng.gen_range(0..KINDS.len());
            let exclude: &[usize] = if rng.gen_bool(0.2) { &[0, 1] } else { &[] };
            let client = SocketAddr::from(([10, 0, 0, rng.gen_range(1..8)], rng.gen()));
            // The real clock, as the engine's: backends marked down come back after a backoff.
            let now = clock::now_ms();
            let request = PickRequest::new(pool_idx, now)
                .excluding(exclude)
                .for_client(Some(client));
            let pick = match table.pick(&request) {
                Ok(pick) => pick,
                Err(why) => {
                    assert_eq!(why, NoPick::AllFull, "limited backends are never down");
                    continue;
                }
            };
            picks += 1;
            let pool = table.pool(pool_idx).unwrap();
            let active = pool.backend_active(pick.backend).unwrap();
            let max = limits[&pick.addr];
            assert!(
                max == 0 || active <= max,
                "{} has {active} > max {max}",
                pick.addr
            );
            let own = mine.entry(pick.addr).or_default();
            *own += 1;
            assert!(
                active >= *own,
                "{} shows {active} < {own} held here",
                pick.addr
            );
            // Backend 2 (unlimited, tier 2) of every pool is flaky.
            if pick.backend == 2 && rng.gen_bool(0.5) {
                pick.guard.connect_failed(now);
            } else {
                pick.guard.connect_succeeded(now);
                let connect = Duration::from_micros(rng.gen_range(50..500));
                pick.guard.observe_connect(connect, now);
                let first_byte = Duration::from_millis(rng.gen_range(1..100));
                pick.guard.observe_first_byte(first_byte, now);
            }
            held.push(pick);
        } else if !held.is_empty() {
            let pick = held.swap_remove(rng.gen_range(0..held.len()));
            *mine.get_mut(&pick.addr).unwrap() -= 1;
            drop(pick);
        }
    }
    drop(held);
    picks
}

#[test]
fn concurrent_picks_and_reloads_keep_counts_exact() {
    let registry = Arc::new(Registry::new());
    let shared = Arc::new(SharedTable::new(Table::build(&spec(0), &registry)));
    let limits = Arc::new(limits());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WORKERS + 1));

    let swapper = {
        let (registry, shared, done, start) = (
            registry.clone(),
            shared.clone(),
            done.clone(),
            start.clone(),
        );
        thread::spawn(move || {
            start.wait();
            let mut generation = 0;
            while !done.load(Ordering::Acquire) {
                generation += 1;
                shared.store(Table::build(&spec(generation), &registry));
                thread::yield_now();
            }
            generation
        })
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (shared, limits, start) = (shared.clone(), limits.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                worker(&shared, w as u64 + 1, &limits)
            })
        })
        .collect();
    let picks: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::Release);
    let swaps = swapper.join().unwrap();
    assert!(swaps >= 10, "only {swaps} reloads happened");
    assert!(picks > WORKERS * OPS_PER_WORKER / 4, "only {picks} picks");

    shared.store(Table::build(&spec(0), &registry));
    for pool in shared.load().snapshot(clock::now_ms()) {
        for backend in pool.backends {
            assert_eq!(
                backend.active, 0,
                "{} in {} leaked",
                backend.addr, pool.name
            );
        }
    }
    assert_eq!(registry.len(), KINDS.len() * BACKENDS.len());
}
