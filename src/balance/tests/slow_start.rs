//! Slow start: a backend back from down, or added by a reload, ramps its effective weight from
//! 10% to 100% over `slow_start`; a backend present at the first build does not ramp; and the
//! ramp steers picks of every strategy.

use std::time::Duration;

use super::{build, hits, spec_with, ALL};
use crate::balance::strategy::test_support::pick_at;
use crate::balance::StrategyKind::{self, *};
use crate::balance::{seed_thread_rng, Registry, Table, TableSpec};

const RAMP: Duration = Duration::from_secs(10);

fn ramped(kind: StrategyKind, backends: &[(u32, u32, u32)]) -> TableSpec {
    spec_with(kind, backends, |p| p.slow_start = RAMP)
}

fn effective(table: &Table, now_ms: u64) -> Vec<u32> {
    table.snapshot(now_ms)[0]
        .backends
        .iter()
        .map(|b| b.effective_weight)
        .collect()
}

#[test]
fn back_from_down_ramps_from_ten_percent() {
    let (_r, table) = build(&ramped(RoundRobin, &[(100, 0, 0), (100, 0, 0)]));
    assert_eq!(effective(&table, 0), vec![100, 100], "first build: no ramp");
    let failing = pick_at(&table, &[0], 1000).unwrap();
    assert!(failing.guard.connect_failed(1000), "down until 2000");
    drop(failing);
    assert_eq!(
        effective(&table, 2500),
        vec![100, 10],
        "half-open: not confirmed yet"
    );
    let probe = pick_at(&table, &[0], 3000).unwrap();
    probe.guard.connect_succeeded(3000);
    assert_eq!(effective(&table, 3000), vec![100, 10]);
    assert_eq!(effective(&table, 8000), vec![100, 55]);
    assert_eq!(effective(&table, 13_000), vec![100, 100]);
}

#[test]
fn only_backends_added_by_a_reload_ramp() {
    let registry = Registry::new();
    let spec = |n: usize| ramped(LeastConnections, &[(100, 0, 0); 3][..n]);
    let first = Table::build_at(&spec(2), &registry, 0);
    assert_eq!(effective(&first, 0), vec![100, 100]);
    let second = Table::build_at(&spec(3), &registry, 1000);
    assert_eq!(effective(&second, 1000), vec![100, 100, 10]);
    assert_eq!(effective(&second, 6000), vec![100, 100, 55]);
    let third = Table::build_at(&spec(3), &registry, 7000);
    assert_eq!(
        effective(&third, 7000),
        vec![100, 100, 64],
        "a reload keeps the ramp"
    );
    assert_eq!(effective(&third, 11_000), vec![100, 100, 100]);
}

#[test]
fn ramp_steers_every_strategy() {
    for (i, kind) in ALL.into_iter().enumerate() {
        seed_thread_rng(i as u64);
        let registry = Registry::new();
        let one = ramped(kind, &[(1, 0, 0)]);
        let two = ramped(kind, &[(1, 0, 0), (1, 0, 0)]);
        drop(Table::build_at(&one, &registry, 0));
        let table = Table::build_at(&two, &registry, 1000);
        if kind == Hash {
            // Released at once, every key is within capacity: hash keeps its placement and
            // applies the ramp only to capacity (checked below with held picks).
            let held: Vec<_> = (0..40)
                .map(|_| pick_at(&table, &[], 1000).unwrap())
                .collect();
            let on_new = held.iter().filter(|p| p.backend == 1).count();
            assert!(on_new <= 6, "hash: ramping backend holds {on_new} of 40");
            continue;
        }
        // At 10% the new backend's expected share is 0.1 / 1.1 = 9%; at full weight 50%.
        let start = hits(&table, 4000, 1000);
        assert!(
            (200..=560).contains(&start[1]),
            "{kind:?} at 10%: {start:?}"
        );
        let done = hits(&table, 4000, 1000 + RAMP.as_millis() as u64);
        assert!(
            (1800..=2200).contains(&done[1]),
            "{kind:?} at 100%: {done:?}"
        );
    }
}
