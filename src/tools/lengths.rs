//! How many tokens a completion gets when its request does not say (`--max-tokens-dist`): a
//! fixed count, or a long-tailed log-normal draw like the output lengths of real chat traffic
//! (most answers short, a few very long), which is what makes streams on a GPU fleet unequal.
//!
//! Shared by the mock backend (`--max-tokens-dist`: the length of a request that does not say;
//! an explicit `max_tokens` in a request always wins) and the load tool (`ringlb-load
//! --max-tokens-dist`: the `max_tokens` each request asks for, drawn per request from a seed),
//! so a benchmark can put the long tail on either side with the same syntax. Must never
//! produce a count of zero (a phantom stream of zero tokens would restart in a tight loop) nor
//! one above [`MAX_TOKENS`].

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// The longest completion anything here asks for or generates: keeps a mock's non-streamed
/// body (about 10 bytes a token) near 1 MB, and is beyond what real engines generate per
/// request.
pub const MAX_TOKENS: u64 = 100_000;

/// OpenAI's default when a completions request has no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 16;

/// Completion lengths of requests that do not fix their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenDist {
    /// Always this many tokens (`fixed:N`).
    Fixed(u64),
    /// `round(exp(N(ln median, sigma)))`, clamped to `1..=max`
    /// (`lognormal:median=M,sigma=S[,max=N]`).
    LogNormal { median: f64, sigma: f64, max: u64 },
}

impl Default for TokenDist {
    fn default() -> Self {
        TokenDist::Fixed(DEFAULT_MAX_TOKENS)
    }
}

/// Why a `--max-tokens-dist` value was refused; the text is meant for the operator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistError {
    #[error("unknown distribution {0:?}: use fixed:N or lognormal:median=M,sigma=S[,max=N]")]
    Kind(String),
    #[error("{key} must be {expect}, got {value:?}")]
    Value {
        key: &'static str,
        expect: &'static str,
        value: String,
    },
    #[error("unknown lognormal parameter {0:?}: use median, sigma and max")]
    Key(String),
    #[error("lognormal needs {0}")]
    Missing(&'static str),
}

fn count(key: &'static str, value: &str) -> Result<u64, DistError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
        _ => Err(DistError::Value {
            key,
            expect: "a whole number of tokens from 1 to 100000",
            value: value.to_string(),
        }),
    }
}

impl FromStr for TokenDist {
    type Err = DistError;

    fn from_str(spec: &str) -> Result<TokenDist, DistError> {
        let (kind, params) = spec.split_once(':').unwrap_or((spec, ""));
        match kind.trim() {
            "fixed" => Ok(TokenDist::Fixed(count("fixed", params)?)),
            "lognormal" => {
                let (mut median, mut sigma, mut max) = (None, None, MAX_TOKENS);
                for pair in params.split(',').filter(|p| !p.trim().is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let real = |key, expect| {
                        let bad = || DistError::Value {
                            key,
                            expect,
                            value: value.to_string(),
                        };
                        value.trim().parse::<f64>().map_err(|_| bad())
                    };
                    match key.trim() {
                        "median" => median = Some(real("median", "a positive number")?),
                        "sigma" => sigma = Some(real("sigma", "a number from 0 to 10")?),
                        "max" => max = count("max", value)?,
                        other => return Err(DistError::Key(other.to_string())),
                    }
                }
                let dist = TokenDist::LogNormal {
                    median: median.ok_or(DistError::Missing("median=M"))?,
                    sigma: sigma.ok_or(DistError::Missing("sigma=S"))?,
                    max,
                };
                dist.check()?;
                Ok(dist)
            }
            other => Err(DistError::Kind(other.to_string())),
        }
    }
}

impl fmt::Display for TokenDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenDist::Fixed(n) => write!(f, "fixed:{n}"),
            TokenDist::LogNormal { median, sigma, max } => {
                write!(f, "lognormal:median={median},sigma={sigma},max={max}")
            }
        }
    }
}

impl TokenDist {
    /// Checks the parameters (they may come from Rust code, not only from [`FromStr`]).
    pub fn check(&self) -> Result<(), DistError> {
        let bad = |key, expect, value: String| Err(DistError::Value { key, expect, value });
        match *self {
            TokenDist::Fixed(n) => count("fixed", &n.to_string()).map(drop),
            TokenDist::LogNormal { median, sigma, max } => {
                if !(median.is_finite() && median > 0.0) {
                    return bad("median", "a positive number", median.to_string());
                }
                // Beyond sigma 10 almost every draw is 1 or max: not a length distribution.
                if !(0.0..=10.0).contains(&sigma) {
                    return bad("sigma", "a number from 0 to 10", sigma.to_string());
                }
                count("max", &max.to_string()).map(drop)
            }
        }
    }

    /// One completion length, at least 1 and at most the distribution's max.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match *self {
            TokenDist::Fixed(n) => n,
            TokenDist::LogNormal { median, sigma, max } => match LogNormal::new(median.ln(), sigma)
            {
                // `as` saturates (NaN becomes 0), and the clamp keeps it in 1..=max.
                Ok(d) => (d.sample(rng).round() as u64).clamp(1, max),
                Err(_) => (median.round() as u64).clamp(1, max),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn parses_both_kinds_and_names_what_is_wrong() {
        assert_eq!("fixed:40".parse(), Ok(TokenDist::Fixed(40)));
        let d: TokenDist = "lognormal:median=200,sigma=1.0,max=4000".parse().unwrap();
        assert_eq!(
            d,
            TokenDist::LogNormal {
                median: 200.0,
                sigma: 1.0,
                max: 4000
            }
        );
        assert_eq!(d.to_string().parse(), Ok(d));
        let err = |s: &str| s.parse::<TokenDist>().unwrap_err().to_string();
        assert!(err("uniform:1").contains("unknown distribution \"uniform\""));
        assert!(err("fixed:0").contains("fixed must be a whole number"));
        assert!(err("fixed:x").contains("got \"x\""));
        assert!(err("lognormal:median=200").contains("needs sigma=S"));
        assert!(err("lognormal:median=-1,sigma=1").contains("median must be a positive"));
        assert!(err("lognormal:median=5,sigma=1,mean=3").contains("\"mean\""));
        assert!(err("lognormal:median=5,sigma=99").contains("sigma must be"));
        assert!(err("lognormal:median=5,sigma=1,max=0").contains("max must be"));
    }

    #[test]
    fn seeded_lognormal_has_its_median_and_a_long_clamped_tail() {
        let d = TokenDist::LogNormal {
            median: 200.0,
            sigma: 1.0,
            max: 4000,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut draws: Vec<u64> = (0..20_000).map(|_| d.sample(&mut rng)).collect();
        draws.sort_unstable();
        let at = |q: f64| draws[((draws.len() - 1) as f64 * q) as usize];
        let median = at(0.5);
        assert!((185..=215).contains(&median), "median {median}");
        // exp(2.326 sigma) * median: the 99th percentile of a log-normal is ~10x its median.
        let p99 = at(0.99);
        assert!((1600..=2600).contains(&p99), "p99 {p99}");
        assert!(*draws.first().unwrap() >= 1);
        assert_eq!(*draws.last().unwrap(), 4000, "the tail is clamped at max");
        let fixed = TokenDist::Fixed(7);
        assert!((0..100).all(|_| fixed.sample(&mut rng) == 7));
    }
}
