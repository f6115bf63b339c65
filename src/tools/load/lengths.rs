//! The `max_tokens` each stream asks for: one fixed count (`--max-tokens`), or a draw per
//! request from a length distribution (`--max-tokens-dist`, the same syntax and sampler as the
//! mock backend's) so a benchmark sends the long-tailed output lengths of real chat traffic.
//!
//! A draw depends only on the seed and the request's number in the run, never on which
//! connection runs it or when: two runs with the same seed ask for the same lengths in the same
//! order, whichever target is slower. Must never yield zero or more than the distribution's max.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::tools::lengths::TokenDist;

/// Where `max_tokens` comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lengths {
    Fixed(u64),
    Drawn { dist: TokenDist, seed: u64 },
}

/// 2^64 / golden ratio: spreads consecutive request numbers over the seed space, so request
/// `i` of seed `s` and request `i + 1` of seed `s - 1` do not share a stream of draws.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Lengths {
    /// The `max_tokens` of request number `seq` (0-based, in ticket order).
    pub fn for_request(&self, seq: u64) -> u64 {
        match *self {
            Lengths::Fixed(n) => n,
            Lengths::Drawn { dist, seed } => {
                let mut rng = StdRng::seed_from_u64(seed ^ seq.wrapping_mul(SPREAD));
                dist.sample(&mut rng)
            }
        }
    }

    /// Whether every request asks for the same count (so a request can be built once).
    pub fn fixed(&self) -> Option<u64> {
        match *self {
            Lengths::Fixed(n) => Some(n),
            Lengths::Drawn { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lognormal() -> Lengths {
        Lengths::Drawn {
            dist: "lognormal:median=100,sigma=1.2,max=2000".parse().unwrap(),
            seed: 42,
        }
    }

    #[test]
    fn same_seed_same_lengths_in_any_order() {
        let a = lognormal();
        let forward: Vec<u64> = (0..1000).map(|i| a.for_request(i)).collect();
        let backward: Vec<u64> = (0..1000).rev().map(|i| a.for_request(i)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        let Lengths::Drawn { dist, .. } = a else {
            unreachable!()
        };
        let other = Lengths::Drawn { dist, seed: 43 };
        let differ = (0..1000)
            .filter(|&i| other.for_request(i) != forward[i as usize])
            .count();
        assert!(differ > 900, "another seed draws other lengths ({differ})");
    }

    #[test]
    fn draws_follow_the_distribution_per_request() {
        let a = lognormal();
        let mut draws: Vec<u64> = (0..20_000).map(|i| a.for_request(i)).collect();
        draws.sort_unstable();
        let median = draws[draws.len() / 2];
        assert!((92..=108).contains(&median), "median {median}");
        // exp(2.326 * 1.2) = 16.3: the 99th percentile is ~16x the median.
        let p99 = draws[draws.len() * 99 / 100];
        assert!((1300..=1950).contains(&p99), "p99 {p99}");
        assert!(draws[0] >= 1 && *draws.last().unwrap() <= 2000);
        assert_eq!(a.fixed(), None);
        assert_eq!(Lengths::Fixed(9).for_request(123), 9);
        assert_eq!(Lengths::Fixed(9).fixed(), Some(9));
    }
}
