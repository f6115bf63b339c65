use crate::balance::strategy::test_support::{backend_specs, pick_at, pool, table_spec};
use crate::balance::{
    CountMode, EngineReading, LeastLoadSpec, NoPick, Pick, Registry, StrategyKind, Table,
};

/// A table of one pool of `kind`, all in tier 0 with the given weights.
fn table(kind: StrategyKind, weights: &[u32], count: CountMode) -> (Registry, Table) {
    let specs: Vec<(u32, u32, u32)> = weights.iter().map(|&w| (w, 0, 0)).collect();
    let mut p = pool(kind, backend_specs(&specs));
    p.count = count;
    let registry = Registry::new();
    let table = Table::build(&table_spec(p), &registry);
    (registry, table)
}

fn least_load(weights: &[u32]) -> (Registry, Table) {
    table(StrategyKind::LeastLoad, weights, CountMode::Streams)
}

/// Publishes a reading for backend `idx`, fresh until t = 10 s.
fn engine(table: &Table, idx: usize, running: u32, waiting: u32, kv: Option<f64>) {
    table.pools()[0].backends()[idx].state.publish_engine(
        EngineReading {
            running,
            waiting,
            kv_usage: kv,
        },
        10_000,
    );
}

fn picks(table: &Table, n: usize, now_ms: u64) -> Vec<Pick> {
    (0..n)
        .map(|_| pick_at(table, &[], now_ms).expect("a backend has room"))
        .collect()
}

fn spread(held: &[Pick], backends: usize) -> Vec<usize> {
    let mut hits = vec![0; backends];
    for p in held {
        hits[p.backend] += 1;
    }
    hits
}

#[test]
fn without_fresh_readings_it_picks_exactly_as_least_connections() {
    let (_a, lc) = table(
        StrategyKind::LeastConnections,
        &[1, 2, 3],
        CountMode::Streams,
    );
    let (_b, ll) = least_load(&[1, 2, 3]);
    // One stale reading (expired at 10 s) must change nothing either.
    engine(&ll, 1, 50, 9, Some(0.9));
    crate::balance::seed_thread_rng(5);
    let mut held_lc = Vec::new();
    let mut order_lc = Vec::new();
    for i in 0..200u64 {
        let p = pick_at(&lc, &[], 20_000).expect("room");
        order_lc.push(p.backend);
        held_lc.push(p);
        if i % 3 == 0 {
            held_lc.remove(0);
        }
    }
    crate::balance::seed_thread_rng(5);
    let mut held_ll = Vec::new();
    let mut order_ll = Vec::new();
    for i in 0..200u64 {
        let p = pick_at(&ll, &[], 20_000).expect("room");
        order_ll.push(p.backend);
        held_ll.push(p);
        if i % 3 == 0 {
            held_ll.remove(0);
        }
    }
    assert_eq!(order_ll, order_lc);
}

#[test]
fn external_load_sends_new_streams_elsewhere() {
    let (_r, t) = least_load(&[1, 1]);
    // Backend 0's engine runs 12 requests, none of them ours.
    engine(&t, 0, 12, 0, None);
    engine(&t, 1, 0, 0, None);
    let held = picks(&t, 12, 0);
    assert_eq!(spread(&held, 2), vec![0, 12], "all to the unloaded engine");
    let more = picks(&t, 10, 0);
    let both: Vec<Pick> = held.into_iter().chain(more).collect();
    let hits = spread(&both, 2);
    assert!(
        (4..=6).contains(&hits[0]),
        "then evenly on the sum: {hits:?}"
    );
}

#[test]
fn streams_added_between_scrapes_raise_the_score_at_once() {
    let (_r, t) = least_load(&[1, 1]);
    // Both engines report 4 running, all ours at the scrape (4 held on each).
    let mut held = Vec::new();
    for idx in 0..2 {
        for _ in 0..4 {
            held.push(pick_at(&t, &[1 - idx], 0).expect("room"));
        }
    }
    engine(&t, 0, 4, 0, None);
    engine(&t, 1, 4, 0, None);
    let burst = picks(&t, 20, 0);
    assert_eq!(
        spread(&burst, 2),
        vec![10, 10],
        "a burst spreads, not piles"
    );
}

#[test]
fn the_engine_queue_weighs_queue_weight_running_streams() {
    let (_r, t) = least_load(&[1, 1]);
    engine(&t, 0, 0, 2, None); // score 8 with the default weight 4
    engine(&t, 1, 0, 0, None);
    let held = picks(&t, 8, 0);
    assert_eq!(spread(&held, 2), vec![0, 8]);
    let next = pick_at(&t, &[], 0).expect("room");
    assert!(next.backend == 0 || next.backend == 1, "tied at 8");
}

#[test]
fn kv_usage_multiplies_and_kv_full_passes_the_backend_over() {
    let (_r, t) = least_load(&[1, 1]);
    engine(&t, 0, 0, 0, Some(0.9)); // x1.81
    engine(&t, 1, 0, 0, Some(0.0));
    let held = picks(&t, 19, 0);
    let hits = spread(&held, 2);
    // 1.81 * a = b, a + b = 19: a ~ 6.8.
    assert!((6..=8).contains(&hits[0]), "{hits:?}");
    engine(&t, 0, 0, 0, Some(0.99));
    let after = picks(&t, 5, 0);
    assert_eq!(spread(&after, 2), vec![0, 5], "KV full: passed over");
}

#[test]
fn every_backend_full_by_its_engine_means_queue() {
    let mut p = pool(
        StrategyKind::LeastLoad,
        backend_specs(&[(1, 0, 0), (1, 0, 0)]),
    );
    p.least_load = LeastLoadSpec {
        waiting_full: 3,
        ..LeastLoadSpec::default()
    };
    let registry = Registry::new();
    let t = Table::build(&table_spec(p), &registry);
    engine(&t, 0, 16, 3, Some(0.5));
    engine(&t, 1, 10, 0, Some(0.985));
    assert_eq!(pick_at(&t, &[], 0).err(), Some(NoPick::AllFull));
    // Stale again: back to plain counts.
    assert!(pick_at(&t, &[], 10_000).is_ok());
}

#[test]
fn full_engines_spill_to_the_next_tier() {
    let p = pool(
        StrategyKind::LeastLoad,
        backend_specs(&[(1, 0, 0), (1, 0, 1)]),
    );
    let registry = Registry::new();
    let t = Table::build(&table_spec(p), &registry);
    engine(&t, 0, 16, 0, Some(1.0));
    let pick = pick_at(&t, &[], 0).expect("tier 1 takes it");
    assert_eq!(pick.backend, 1);
}

#[test]
fn idle_streams_count_as_a_fraction_under_generating() {
    let count = CountMode::Generating { idle_permille: 100 };
    for kind in [StrategyKind::LeastLoad, StrategyKind::LeastConnections] {
        let (_r, t) = table(kind, &[1, 1], count);
        // Ten sessions on backend 0, all idle: they weigh 1 stream in all.
        let idle: Vec<Pick> = (0..10)
            .map(|_| pick_at(&t, &[1], 0).expect("room"))
            .collect();
        for p in &idle {
            assert!(p.guard.mark_quiet_if_due(5_000, 2_000));
        }
        // Backend 1 has two busy streams.
        let busy: Vec<Pick> = (0..2)
            .map(|_| pick_at(&t, &[0], 0).expect("room"))
            .collect();
        let next = pick_at(&t, &[], 0).expect("room");
        assert_eq!(next.backend, 0, "{kind:?}: 1.0 beats 2.0");
        drop((idle, busy, next));
    }
}

#[test]
fn under_streams_idle_streams_count_whole() {
    let (_r, t) = table(StrategyKind::LeastConnections, &[1, 1], CountMode::Streams);
    let idle: Vec<Pick> = (0..10)
        .map(|_| pick_at(&t, &[1], 0).expect("room"))
        .collect();
    for p in &idle {
        p.guard.mark_quiet_if_due(5_000, 2_000);
    }
    let _busy: Vec<Pick> = (0..2)
        .map(|_| pick_at(&t, &[0], 0).expect("room"))
        .collect();
    assert_eq!(pick_at(&t, &[], 0).expect("room").backend, 1);
}
