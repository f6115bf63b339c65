//! Cost of one pick + release on the shared backend table, the only balancer work on the
//! per-connection hot path (every accepted client does exactly one, more on retries).
//!
//! Compared: every strategy (weighted least connections and least latency, which scan every
//! backend, least latency with an `exp` per estimate for the decay; smooth
//! weighted round robin, which reads one precomputed slot through a shared cursor; power of
//! two and random, which draw from a per-thread RNG and binary-search a prefix sum; hash,
//! which hashes the client address, sums the pool's load and walks a ring) at 3, 16 and 256
//! backends, (a) on one thread and (b) with two threads picking on the same table at once,
//! because the shared atomics (the active counts, the round-robin cursor, the state reference
//! counts) bounce between cores there. The target is under 50 ns per pick + release with two
//! threads for the constant-time strategies. Backends are unlimited and healthy, with weights
//! 1..=4, and already hold about 2 x weight connections each (exactly, for the deterministic
//! strategies), as in a busy fleet; each has latency samples (a different first-byte time per
//! backend, its connect and first byte a millisecond apart, so two `exp` per backend: the
//! dearer case). Every pick passes a different client address, as the engine would for `hash`,
//! and the same time a second after the samples: the engine passes its loop-turn time, read
//! once per turn, so no pick reads the clock.
//! Two-thread numbers are the time per pick + release per thread.
//! A last group compares fetching the table with `SharedTable::load` against a per-worker
//! `TableCache`, since that fetch is part of every pick, and gives the floor: a bare shared
//! counter increment + decrement, the least any pick + release with a shared count can cost
//! on this machine (on a busy shared box the two threads are not always on CPU together, which
//! inflates every two-thread number alike).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringlb::balance::{
    seed_thread_rng, BackendSpec, HashKey, HealthPolicy, Pick, PickRequest, PoolSpec, Registry,
    SharedTable, StrategyKind, Table, TableCache, TableSpec,
};

const SIZES: [usize; 3] = [3, 16, 256];
const STRATEGIES: [(&str, StrategyKind); 6] = [
    ("least_connections", StrategyKind::LeastConnections),
    ("round_robin", StrategyKind::RoundRobin),
    ("power_of_two", StrategyKind::PowerOfTwo),
    ("least_latency", StrategyKind::LeastLatency),
    ("random", StrategyKind::Random),
    ("hash", StrategyKind::Hash),
];

/// When the latency samples are taken (`clock::now_ms()` milliseconds).
const SAMPLED_MS: u64 = 1_000;
/// When every benchmarked pick happens: a second later, so that the decay takes an `exp`.
const NOW_MS: u64 = 2_000;

/// The request of pick number `i`: pool 0, nothing excluded, its own client address.
fn request(i: u32, now_ms: u64) -> PickRequest<'static> {
    PickRequest::new(0, now_ms).for_client(Some(client(i)))
}

/// The client address of pick number `i`.
fn client(i: u32) -> SocketAddr {
    let [_, a, b, c] = i.to_be_bytes();
    SocketAddr::from(([172, a, b, c], 50_000))
}

/// A table whose backends already hold about 2 x weight connections (returned, to keep them).
fn busy_table(kind: StrategyKind, backends: usize) -> (Registry, Arc<SharedTable>, Vec<Pick>) {
    seed_thread_rng(1);
    let weight = |i: usize| (i % 4) as u32 + 1;
    let spec = TableSpec {
        pools: vec![PoolSpec {
            name: "bench".into(),
            strategy: kind,
            backends: (0..backends)
                .map(|i| BackendSpec {
                    addr: SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8], 8000)),
                    weight: weight(i),
                    max_connections: 0,
                    tier: 0,
                    drain: false,
                })
                .collect(),
            hash_key: HashKey::ClientIp,
            hash_balance_factor: 1.25,
            latency_decay: Duration::from_secs(10),
            slow_start: Duration::ZERO,
            passive: None,
            check: None,
            count: Default::default(),
            least_load: Default::default(),
            engine: None,
        }],
        health: HealthPolicy::default(),
    };
    let registry = Registry::new();
    let table = Table::build(&spec, &registry);
    let total: u32 = (0..backends).map(weight).sum();
    let held: Vec<Pick> = (0..2 * total)
        .map(|i| {
            let pick = table
                .pick(&request(i, SAMPLED_MS))
                .expect("bench backends have room");
            let first_byte = 20 + (pick.backend % 7) as u64 * 10;
            let guard = &pick.guard;
            guard.observe_connect(Duration::from_micros(300), SAMPLED_MS);
            guard.observe_first_byte(Duration::from_millis(first_byte), SAMPLED_MS + 1);
            pick
        })
        .collect();
    (registry, Arc::new(SharedTable::new(table)), held)
}

#[inline]
fn pick_release(shared: &SharedTable, i: u32) {
    let table = shared.load();
    black_box(table.pick(&request(i, NOW_MS)).ok());
}

#[inline]
fn pick_release_cached(cache: &mut TableCache, i: u32) {
    black_box(cache.load().pick(&request(i, NOW_MS)).ok());
}

/// `iters` pick + release on `shared`, each with the next client address.
fn run(shared: &SharedTable, iters: u64) {
    (0..iters).for_each(|i| pick_release(shared, i as u32));
}

/// Runs `work(iters)` on this thread and on a second one started at the same time; returns
/// the time until both are done.
fn contended(iters: u64, work: impl Fn(u64) + Send + Sync + Clone + 'static) -> Duration {
    let barrier = Arc::new(Barrier::new(2));
    let other = {
        let (barrier, work) = (barrier.clone(), work.clone());
        thread::spawn(move || {
            barrier.wait();
            work(iters);
            barrier.wait();
        })
    };
    barrier.wait();
    let start = Instant::now();
    work(iters);
    barrier.wait();
    let elapsed = start.elapsed();
    other.join().expect("bench thread panicked");
    elapsed
}

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick_release_1_thread");
    for (name, kind) in STRATEGIES {
        for n in SIZES {
            let (_registry, shared, _held) = busy_table(kind, n);
            let mut i = 0u32;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    pick_release(&shared, i)
                })
            });
        }
    }
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick_release_2_threads");
    for (name, kind) in STRATEGIES {
        for n in SIZES {
            let (_registry, shared, _held) = busy_table(kind, n);
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| {
                    let shared = shared.clone();
                    contended(iters, move |iters| run(&shared, iters))
                })
            });
        }
    }
    group.finish();
}

fn table_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_access_round_robin_3");
    let (_registry, shared, _held) = busy_table(StrategyKind::RoundRobin, 3);
    group.bench_function("load_1_thread", |b| b.iter(|| pick_release(&shared, 0)));
    let mut cache = shared.cache();
    group.bench_function("cache_1_thread", |b| {
        b.iter(|| pick_release_cached(&mut cache, 0))
    });
    group.bench_function("load_2_threads", |b| {
        b.iter_custom(|iters| {
            let shared = shared.clone();
            contended(iters, move |iters| run(&shared, iters))
        })
    });
    group.bench_function("cache_2_threads", |b| {
        b.iter_custom(|iters| {
            let shared = shared.clone();
            contended(iters, move |iters| {
                let mut cache = shared.cache();
                (0..iters).for_each(|i| pick_release_cached(&mut cache, i as u32))
            })
        })
    });
    let counter = Arc::new(AtomicU32::new(0));
    group.bench_function("floor_counter_2_threads", |b| {
        b.iter_custom(|iters| {
            let counter = counter.clone();
            contended(iters, move |iters| {
                for _ in 0..iters {
                    black_box(counter.fetch_add(1, Ordering::AcqRel));
                    black_box(counter.fetch_sub(1, Ordering::AcqRel));
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, one_thread, two_threads, table_access);
criterion_main!(benches);
