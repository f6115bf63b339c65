//! Active-check state through whole tables, for every strategy: a backend the check says is
//! down, or that has not passed yet (`start = "unknown"`), is never picked; its state and the
//! per-pool passive policy survive a rebuild; snapshots show health next to the drain.

use std::time::Duration;

use super::{build, hits, spec_with, ALL};
use crate::balance::strategy::test_support::pick_at;
use crate::balance::{
    ActiveCheck, CheckFailure, CheckStart, CheckStatus, DownCause, HealthPolicy, HealthState,
    NoPick, OnDown, Probe, Registry, Table,
};

fn check(start: CheckStart) -> ActiveCheck {
    ActiveCheck {
        probe: Probe::Tcp,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
        on_down: OnDown::Keep,
        start,
    }
}

fn states(table: &Table) -> Vec<crate::balance::SharedState> {
    table
        .pool(0)
        .unwrap()
        .check_targets()
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn unknown_and_down_backends_are_never_picked_by_any_strategy() {
    for kind in ALL {
        crate::balance::seed_thread_rng(5);
        let spec = spec_with(kind, &[(1, 0, 0), (1, 0, 0), (1, 0, 0)], |p| {
            p.check = Some(check(CheckStart::Unknown));
        });
        let (_r, table) = build(&spec);
        assert_eq!(
            pick_at(&table, &[], 0).unwrap_err(),
            NoPick::Unavailable,
            "{kind:?}: nothing passed yet"
        );
        let s = states(&table);
        s[0].check_up_at(0);
        s[1].check_up_at(0);
        s[2].check_up_at(0);
        s[1].check_down(CheckFailure::Status(503), false);
        let h = hits(&table, 300, 0);
        assert_eq!(h[1], 0, "{kind:?}: down backend picked: {h:?}");
        assert!(h[0] > 0 && h[2] > 0, "{kind:?}: {h:?}");
    }
}

#[test]
fn check_state_survives_a_rebuild_and_a_removed_check_frees_the_backend() {
    let registry = Registry::new();
    let with = |start| {
        spec_with(
            crate::balance::StrategyKind::RoundRobin,
            &[(1, 0, 0)],
            |p| {
                p.check = Some(check(start));
            },
        )
    };
    let a = Table::build_at(&with(CheckStart::Up), &registry, 0);
    states(&a)[0].check_down(CheckFailure::Timeout, false);
    let b = Table::build_at(&with(CheckStart::Up), &registry, 0);
    assert_eq!(
        b.snapshot(0)[0].backends[0].check,
        CheckStatus::Down(CheckFailure::Timeout)
    );
    assert!(pick_at(&b, &[], 0).is_err());
    let no_check = spec_with(
        crate::balance::StrategyKind::RoundRobin,
        &[(1, 0, 0)],
        |_| {},
    );
    let c = Table::build_at(&no_check, &registry, 0);
    assert_eq!(c.snapshot(0)[0].backends[0].check, CheckStatus::NotChecked);
    assert!(pick_at(&c, &[], 0).is_ok());
}

#[test]
fn snapshots_show_health_apart_from_the_drain_and_the_passive_policy_is_per_pool() {
    let spec = spec_with(
        crate::balance::StrategyKind::LeastConnections,
        &[(1, 0, 0), (0, 0, 0), (1, 0, 0), (1, 0, 0)],
        |p| {
            p.check = Some(check(CheckStart::Up));
            p.passive = Some(HealthPolicy {
                fail_threshold: 2,
                ..HealthPolicy::default()
            });
        },
    );
    let (_r, table) = build(&spec);
    let s = states(&table);
    s[1].check_down(CheckFailure::Refused, false);
    s[2].check_down(CheckFailure::Body, false);
    let failing = pick_at(&table, &[0, 2], 0).unwrap();
    assert_eq!(failing.backend, 3);
    assert!(!failing.guard.connect_failed(0), "threshold 2, not 1");
    assert!(failing.guard.connect_failed(0));
    drop(failing);
    let health: Vec<HealthState> = table.snapshot(0)[0]
        .backends
        .iter()
        .map(|b| b.health)
        .collect();
    assert_eq!(
        health,
        vec![
            HealthState::Up,
            HealthState::Draining,
            HealthState::Down(DownCause::Check(CheckFailure::Body)),
            HealthState::Down(DownCause::Passive),
        ]
    );
    assert_eq!(health[2].to_string(), "down (check: body mismatch)");
}
