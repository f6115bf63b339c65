//! Released at once, picks follow the weights: 10k picks land within 5% (relative) of each
//! backend's weight share, for every strategy that spreads by weight.

use super::{build, hits, spec3};
use crate::balance::seed_thread_rng;
use crate::balance::StrategyKind::{self, *};

const WEIGHTS: [(u32, u32, u32); 3] = [(1, 0, 0), (2, 0, 0), (3, 0, 0)];
const PICKS: usize = 10_000;

fn assert_shares(kind: StrategyKind, seed: u64) {
    seed_thread_rng(seed);
    let (_r, table) = build(&spec3(kind, &WEIGHTS));
    let got = hits(&table, PICKS, 0);
    let total: u32 = WEIGHTS.iter().map(|w| w.0).sum();
    for (i, &(weight, _, _)) in WEIGHTS.iter().enumerate() {
        let want = PICKS as f64 * f64::from(weight) / f64::from(total);
        let off = (f64::from(got[i]) - want).abs() / want;
        assert!(
            off <= 0.05,
            "{kind:?}: backend {i} got {got:?}, want ~{want}"
        );
    }
}

#[test]
fn random_follows_weights() {
    assert_shares(Random, 1);
}

#[test]
fn power_of_two_follows_weights() {
    assert_shares(PowerOfTwo, 2);
}

#[test]
fn round_robin_follows_weights() {
    assert_shares(RoundRobin, 3);
}

#[test]
fn least_connections_ties_follow_weights() {
    assert_shares(LeastConnections, 4);
}

#[test]
fn least_latency_without_samples_follows_weights() {
    assert_shares(LeastLatency, 5);
}
