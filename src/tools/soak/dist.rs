//! The run's mix of streams, drawn from the run seed: which kind each stream is, how many bytes
//! each way (0..max, skewed small), which clients stall. Must never draw from anything but the
//! seeded generator it is given, so `--seed` replays the same streams.

use rand::Rng;

use super::header::{Header, Kind};

/// Share of each kind in the mix, in percent: mostly streams that complete, with enough resets
/// of each side to exercise reset propagation.
const KIND_WEIGHTS: [(Kind, u32); 5] = [
    (Kind::ClientHalfClose, 30),
    (Kind::BackendHalfClose, 25),
    (Kind::Echo, 20),
    (Kind::ClientReset, 10),
    (Kind::BackendReset, 10),
];
/// Share of directions that carry no byte at all (empty requests and answers happen).
const EMPTY_SHARE: f64 = 0.05;
/// Share of completing streams whose client stops reading for a while.
const STALL_SHARE: f64 = 0.10;
/// A stalled stream carries at least this much towards the client (capped at the run's
/// maximum), so the stall backs bytes up inside ringlb rather than finishing unnoticed.
pub const STALL_MIN_DOWN: u64 = 1 << 20;

/// Bytes of one direction: 0 for a few, otherwise log-uniform in 1..=max (most are small, the
/// largest still appear: of 1..=4 MiB the median is ~2 KiB, a quarter exceed ~90 KiB and one
/// in twenty ~2 MiB; the mean is ~270 KiB).
pub fn draw_len(rng: &mut impl Rng, max: u64) -> u64 {
    if max == 0 || rng.gen_bool(EMPTY_SHARE) {
        return 0;
    }
    let x = ((max as f64 + 1.0).ln() * rng.gen::<f64>()).exp();
    (x as u64).clamp(1, max)
}

fn draw_kind(rng: &mut impl Rng) -> Kind {
    let total: u32 = KIND_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut pick = rng.gen_range(0..total);
    for (kind, w) in KIND_WEIGHTS {
        if pick < w {
            return kind;
        }
        pick -= w;
    }
    unreachable!("pick is below the total weight")
}

/// Draws stream `id` of the run.
pub fn draw_stream(rng: &mut impl Rng, id: u64, max_len: u64) -> Header {
    let kind = draw_kind(rng);
    let stall = kind.completes() && rng.gen_bool(STALL_SHARE);
    let mut up_len = draw_len(rng, max_len);
    let mut down_len = draw_len(rng, max_len);
    if stall {
        down_len = down_len.max(STALL_MIN_DOWN.min(max_len));
    }
    if kind == Kind::Echo {
        up_len = up_len.max(down_len * u64::from(stall));
        down_len = up_len;
    }
    Header {
        id,
        kind,
        stall,
        seed: rng.gen(),
        up_len,
        down_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const MAX: u64 = 4 << 20;

    #[test]
    fn lengths_are_bounded_and_skewed_small() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut lens: Vec<u64> = (0..20_000).map(|_| draw_len(&mut rng, MAX)).collect();
        assert!(lens.iter().all(|&l| l <= MAX));
        lens.sort_unstable();
        let zeros = lens.iter().filter(|&&l| l == 0).count();
        assert!((700..1300).contains(&zeros), "{zeros} empty of 20000");
        let median = lens[lens.len() / 2];
        assert!((500..10_000).contains(&median), "median {median}");
        let big = lens.iter().filter(|&&l| l >= MAX / 2).count();
        assert!(big > 200, "only {big} of 20000 at 2 MiB or more");
        assert_eq!(draw_len(&mut rng, 0), 0);
        assert!((0..100).all(|_| draw_len(&mut rng, 1) <= 1));
    }

    #[test]
    fn the_mix_follows_the_weights_and_the_seed() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..10_000)
                .map(|id| draw_stream(&mut rng, id, MAX))
                .collect::<Vec<_>>()
        };
        let run = draw(7);
        assert_eq!(run, draw(7));
        assert_ne!(run, draw(8));
        for (kind, w) in KIND_WEIGHTS {
            let n = run.iter().filter(|h| h.kind == kind).count() as u32;
            let want = w * 100;
            assert!(n.abs_diff(want) < want / 5, "{kind:?}: {n}, want ~{want}");
        }
        let stalls: Vec<_> = run.iter().filter(|h| h.stall).collect();
        assert!(
            (500..1000).contains(&stalls.len()),
            "{} stalls",
            stalls.len()
        );
        assert!(stalls
            .iter()
            .all(|h| h.kind.completes() && h.down_len >= STALL_MIN_DOWN));
        assert!(run
            .iter()
            .filter(|h| h.kind == Kind::Echo)
            .all(|h| h.up_len == h.down_len));
    }
}
