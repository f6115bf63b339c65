//! Cost of one pick + release on the shared backend table, the only balancer work on the
//! per-connection hot path (every accepted client does exactly one, more on retries).
//!
//! Compared: the two strategies (weighted least connections, which scans every backend, and
//! smooth weighted round robin, which reads one precomputed slot through a shared cursor) at
//! 3, 16 and 256 backends, (a) on one thread and (b) with two threads picking on the same table
//! at once, because the shared atomics (the active counts, the round-robin cursor, the state
//! reference counts) bounce between cores there. The target is under 50 ns per pick + release
//! with two threads. Backends are unlimited and healthy, with weights 1..=4, and already hold
//! 2 x weight connections each, as in a busy fleet: no backend is idle, so least connections
//! cannot stop its scan early. Two-thread numbers are the time per pick + release per thread.
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
    BackendSpec, HealthPolicy, Pick, PoolSpec, Registry, SharedTable, StrategyKind, Table,
    TableCache, TableSpec,
};

const SIZES: [usize; 3] = [3, 16, 256];
const STRATEGIES: [(&str, StrategyKind); 2] = [
    ("least_connections", StrategyKind::LeastConnections),
    ("round_robin", StrategyKind::RoundRobin),
];

/// A table whose backends already hold 2 x weight connections (returned, to keep them).
fn busy_table(kind: StrategyKind, backends: usize) -> (Registry, Arc<SharedTable>, Vec<Pick>) {
    let weight = |i: usize| (i % 4) as u32 + 1;
    let spec = TableSpec {
        pools: vec![PoolSpec {
            name: "bench".into(),
            strategy: kind,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(60),
            retries: 1,
            backends: (0..backends)
                .map(|i| BackendSpec {
                    addr: SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8], 8000)),
                    weight: weight(i),
                    max_connections: 0,
                })
                .collect(),
        }],
        health: HealthPolicy::default(),
    };
    let registry = Registry::new();
    let table = Table::build(&spec, &registry);
    let total: u32 = (0..backends).map(weight).sum();
    // Both strategies fill exactly 2 x weight per backend from an idle start.
    let held = (0..2 * total)
        .map(|_| table.pick(0, &[]).expect("bench backends have room"))
        .collect();
    (registry, Arc::new(SharedTable::new(table)), held)
}

#[inline]
fn pick_release(shared: &SharedTable) {
    let table = shared.load();
    black_box(table.pick(0, &[]));
}

#[inline]
fn pick_release_cached(cache: &mut TableCache) {
    black_box(cache.load().pick(0, &[]));
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
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| pick_release(&shared))
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
                    contended(iters, move |iters| {
                        (0..iters).for_each(|_| pick_release(&shared))
                    })
                })
            });
        }
    }
    group.finish();
}

fn table_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_access_round_robin_3");
    let (_registry, shared, _held) = busy_table(StrategyKind::RoundRobin, 3);
    group.bench_function("load_1_thread", |b| b.iter(|| pick_release(&shared)));
    let mut cache = shared.cache();
    group.bench_function("cache_1_thread", |b| {
        b.iter(|| pick_release_cached(&mut cache))
    });
    group.bench_function("load_2_threads", |b| {
        b.iter_custom(|iters| {
            let shared = shared.clone();
            contended(iters, move |iters| {
                (0..iters).for_each(|_| pick_release(&shared))
            })
        })
    });
    group.bench_function("cache_2_threads", |b| {
        b.iter_custom(|iters| {
            let shared = shared.clone();
            contended(iters, move |iters| {
                let mut cache = shared.cache();
                (0..iters).for_each(|_| pick_release_cached(&mut cache))
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
