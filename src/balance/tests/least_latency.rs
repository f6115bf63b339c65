//! least_latency at the table level, with time and samples under the test's control: a
//! backend whose first byte comes 80 ms later loses the streams; once it has recovered, the
//! decay of its old peak gets it probed again, fresh samples confirm it, and traffic returns.

use std::collections::VecDeque;
use std::time::Duration;

use super::{build, spec3};
use crate::balance::strategy::test_support::pick_at;
use crate::balance::StrategyKind::LeastLatency;
use crate::balance::{seed_thread_rng, Pick, Table};

const CONNECT: Duration = Duration::from_millis(1);
const FAST: Duration = Duration::from_millis(20);
const SLOW: Duration = Duration::from_millis(100);

/// What the engine reports for a stream on `pick` at `now_ms`.
fn feed(pick: &Pick, first_byte: Duration, now_ms: u64) {
    pick.guard.observe_connect(CONNECT, now_ms);
    pick.guard.observe_first_byte(first_byte, now_ms);
}

/// `count` picks `step_ms` apart, each held until two newer ones exist (short streams); each
/// is fed the first-byte time `latency(backend)`. Returns the backends picked.
fn run(
    table: &Table,
    now: &mut u64,
    count: usize,
    step_ms: u64,
    latency: impl Fn(usize) -> Duration,
) -> Vec<usize> {
    let mut held = VecDeque::new();
    let mut picked = Vec::new();
    for _ in 0..count {
        *now += step_ms;
        let pick = pick_at(table, &[], *now).unwrap();
        feed(&pick, latency(pick.backend), *now);
        picked.push(pick.backend);
        held.push_back(pick);
        if held.len() > 2 {
            held.pop_front();
        }
    }
    picked
}

#[test]
fn a_slow_backend_loses_streams_and_wins_them_back() {
    seed_thread_rng(9);
    let (_r, table) = build(&spec3(LeastLatency, &[(1, 0, 0), (1, 0, 0)]));
    let mut now = 1000;
    for (backend, latency) in [(0, FAST), (1, SLOW)] {
        let pick = pick_at(&table, &[1 - backend], now).unwrap();
        feed(&pick, latency, now);
    }
    let snap = &table.snapshot(now)[0].backends;
    assert_eq!(
        (snap[0].latency_ms, snap[1].latency_ms),
        (Some(21.0), Some(101.0))
    );

    let slow_phase = run(
        &table,
        &mut now,
        40,
        50,
        |b| if b == 0 { FAST } else { SLOW },
    );
    let on_fast = slow_phase.iter().filter(|&&b| b == 0).count();
    assert!(
        on_fast >= 30,
        "only {on_fast} of 40 on the fast backend: {slow_phase:?}"
    );

    // Backend 1 has recovered, but without traffic nothing shows it: its old peak decays
    // (10 s time constant) until it is tried, and its fresh samples keep it in use.
    let recovered = run(&table, &mut now, 40, 1000, |_| FAST);
    let back = recovered.iter().filter(|&&b| b == 1).count();
    let late = recovered[30..].iter().filter(|&&b| b == 1).count();
    assert!(
        back >= 8 && late >= 3,
        "traffic did not return: {recovered:?}"
    );
    let estimate = table.snapshot(now)[0].backends[1].latency_ms.unwrap();
    assert!(estimate < 30.0, "recovered estimate {estimate}");
}

#[test]
fn a_backend_without_samples_counts_as_the_pool_mean() {
    seed_thread_rng(10);
    let (_r, table) = build(&spec3(LeastLatency, &[(1, 0, 0), (1, 0, 0), (1, 0, 0)]));
    for (backend, latency) in [(0, FAST), (1, SLOW)] {
        let others: Vec<usize> = (0..3).filter(|&b| b != backend).collect();
        let pick = pick_at(&table, &others, 0).unwrap();
        feed(&pick, latency, 0);
    }
    // Costs: backend 0 is 21 x (active + 1), the new backend 2 the mean 61, backend 1 101.
    let held: Vec<Pick> = (0..3).map(|_| pick_at(&table, &[], 0).unwrap()).collect();
    let order: Vec<usize> = held.iter().map(|p| p.backend).collect();
    assert_eq!(order, vec![0, 0, 2]);
}
