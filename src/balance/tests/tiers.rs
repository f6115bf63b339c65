//! Tiers wrap every strategy: the lowest tier with a usable backend takes the stream, higher
//! tiers only the overflow; and a failed pick says whether everything is full (worth queueing)
//! or nothing is available.

use super::{build, spec3, ALL};
use crate::balance::strategy::test_support::pick_at;
use crate::balance::{NoPick, Pick, PickRequest};

fn tier_of(pick: &Pick) -> u32 {
    // Backend 0 is tier 1 and listed first; backend 1 is the tier-0 backend.
    if pick.backend == 1 {
        0
    } else {
        1
    }
}

#[test]
fn overflow_goes_to_the_next_tier_for_every_strategy() {
    for kind in ALL {
        let (_r, table) = build(&spec3(kind, &[(1, 2, 1), (1, 2, 0), (5, 0, 7)]));
        let client = Some("10.0.0.1:5000".parse().unwrap());
        let mut held: Vec<Pick> = (0..4)
            .map(|_| {
                table
                    .pick(&PickRequest::new(0, 0).for_client(client))
                    .unwrap()
            })
            .collect();
        let tiers: Vec<u32> = held.iter().map(tier_of).collect();
        assert_eq!(tiers, vec![0, 0, 1, 1], "{kind:?}");
        let fifth = table
            .pick(&PickRequest::new(0, 0).for_client(client))
            .unwrap();
        assert_eq!(
            fifth.backend, 2,
            "{kind:?}: tier 7 takes what tiers 0 and 1 cannot"
        );
        drop(held.remove(0));
        let again = table
            .pick(&PickRequest::new(0, 0).for_client(client))
            .unwrap();
        assert_eq!(
            again.backend, 1,
            "{kind:?}: a freed tier-0 slot is used first"
        );
        // Excluding the tier-0 backend (a failed connect) moves the retry up a tier.
        held.push(again); // now [b1, b0, b0, b1]: tiers 0 and 1 full again
        drop(held.remove(1));
        let retry = table
            .pick(&PickRequest::new(0, 0).excluding(&[1]).for_client(client))
            .unwrap();
        assert_eq!(retry.backend, 0, "{kind:?}");
        drop(fifth);
    }
}

#[test]
fn no_pick_tells_full_from_unavailable() {
    for kind in ALL {
        let (_r, table) = build(&spec3(kind, &[(1, 1, 0), (1, 1, 1), (0, 0, 0)]));
        let a = pick_at(&table, &[], 0).unwrap();
        let b = pick_at(&table, &[], 0).unwrap();
        assert_eq!(
            pick_at(&table, &[], 0).unwrap_err(),
            NoPick::AllFull,
            "{kind:?}"
        );
        assert_eq!(
            pick_at(&table, &[a.backend], 0).unwrap_err(),
            NoPick::AllFull,
            "{kind:?}: the other one is still only full"
        );
        assert_eq!(
            pick_at(&table, &[0, 1], 0).unwrap_err(),
            NoPick::Unavailable,
            "{kind:?}: tried both, the third is drained"
        );
        // Fail threshold 1: each failure marks its backend down (for 1 s).
        assert!(a.guard.connect_failed(0) && b.guard.connect_failed(0));
        drop((a, b));
        assert_eq!(
            pick_at(&table, &[], 10).unwrap_err(),
            NoPick::Unavailable,
            "{kind:?}: all down"
        );
        assert!(
            pick_at(&table, &[], 1000).is_ok(),
            "{kind:?}: back after the backoff"
        );
    }
    let (_r, table) = build(&spec3(ALL[0], &[]));
    assert_eq!(pick_at(&table, &[], 0).unwrap_err(), NoPick::Unavailable);
    assert_eq!(
        table.pick(&PickRequest::new(9, 0)).unwrap_err(),
        NoPick::Unavailable
    );
}

#[test]
fn snapshot_shows_tiers() {
    let (_r, table) = build(&spec3(ALL[1], &[(1, 0, 3), (2, 0, 0)]));
    let snap = &table.snapshot(0)[0].backends;
    assert_eq!((snap[0].tier, snap[1].tier), (3, 0));
    assert_eq!((snap[0].effective_weight, snap[1].effective_weight), (1, 2));
    assert_eq!(snap[0].latency_ms, None);
}
