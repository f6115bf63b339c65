//! The tiny glob of routing rules: `*` matches any run of bytes (also none), `?` exactly one
//! byte, every other byte itself; optionally ASCII-case-insensitive.
//!
//! It exists so that `sni = ["*.internal.example"]` or `model = ["llama-3.1-70b*"]` need no
//! regex engine on the connection path. Matching is iterative with one backtrack point (the
//! last `*`), so it is O(pattern x text) at worst and never recurses: a pattern like `*a*a*a*b`
//! against a long text cannot blow the stack or take exponential time. It must never panic,
//! whatever the pattern or the text; which patterns are allowed at all is the config's call
//! ([`Glob::new`] only refuses what it cannot represent).

use std::fmt;

/// Why a pattern is not a glob ringlb can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("an empty pattern matches nothing useful")]
    Empty,
    #[error("control characters are not allowed in a pattern")]
    Control,
    #[error("`{0}` is not glob syntax here: only `*` and `?` are wildcards")]
    Unsupported(char),
}

/// A compiled glob. Case folding is decided when it is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pattern as written (for display and for the config summary).
    text: String,
    /// The bytes matched against, ASCII-lowercased when `fold`.
    bytes: Box<[u8]>,
    fold: bool,
}

impl Glob {
    /// A case-sensitive glob. Refuses an empty pattern, control characters, and `[` `]` `{`
    /// `}`, which other glob dialects give a meaning this one does not have.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        Self::build(pattern, false, true)
    }

    /// An ASCII-case-insensitive glob (host names, SNI, header names), same refusals.
    pub fn caseless(pattern: &str) -> Result<Glob, GlobError> {
        Self::build(pattern, true, true)
    }

    /// A case-sensitive glob where `[ ] { }` are plain characters (header values, which may
    /// hold JSON or cookies).
    pub fn literal_brackets(pattern: &str) -> Result<Glob, GlobError> {
        Self::build(pattern, false, false)
    }

    fn build(pattern: &str, fold: bool, strict: bool) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        for c in pattern.chars() {
            if c.is_control() {
                return Err(GlobError::Control);
            }
            if strict && matches!(c, '[' | ']' | '{' | '}') {
                return Err(GlobError::Unsupported(c));
            }
        }
        let mut bytes = pattern.as_bytes().to_vec();
        if fold {
            bytes.make_ascii_lowercase();
        }
        Ok(Glob {
            text: pattern.to_string(),
            bytes: bytes.into_boxed_slice(),
            fold,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern is exactly `*` (matches any value, the empty one included).
    pub fn is_star(&self) -> bool {
        self.bytes.iter().all(|&b| b == b'*')
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &[u8]) -> bool {
        let p = &self.bytes[..];
        let eq =
            |pc: u8, tc: u8| pc == b'?' || pc == tc || (self.fold && pc == tc.to_ascii_lowercase());
        let (mut pi, mut ti) = (0usize, 0usize);
        // Where to resume after the last `*`: (pattern index after it, text index it took).
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            match (p.get(pi), text.get(ti)) {
                (Some(b'*'), _) => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                }
                (Some(&pc), Some(&tc)) if eq(pc, tc) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    // Let the last `*` take one more byte and retry from there.
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        pi = sp;
                        ti = st + 1;
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
    }

    /// Whether `text` matches.
    pub fn matches_str(&self, text: &str) -> bool {
        self.matches(text.as_bytes())
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::{Glob, GlobError};

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(g("llama-3.1-70b*").matches_str("llama-3.1-70b-instruct"));
        assert!(g("llama-3.1-70b*").matches_str("llama-3.1-70b"));
        assert!(!g("llama-3.1-70b*").matches_str("llama-3.1-8b"));
        assert!(g("*.internal.example").matches_str("a.internal.example"));
        assert!(!g("*.internal.example").matches_str("internal.example"));
        assert!(g("a?c").matches_str("abc"));
        assert!(!g("a?c").matches_str("ac"));
        assert!(g("*").matches_str(""));
        assert!(g("**").is_star());
        assert!(!g("a*").is_star());
        assert!(g("*a*b*c*").matches_str("xxaxxbxxcxx"));
        assert!(!g("*a*b*c*").matches_str("xxaxxcxxbxx"));
        assert!(g("exact").matches_str("exact"));
        assert!(!g("exact").matches_str("exactly"));
        assert!(
            !g("Exact").matches_str("exact"),
            "case-sensitive by default"
        );
    }

    #[test]
    fn caseless_folds_ascii_only() {
        let host = Glob::caseless("*.Example.COM").unwrap();
        assert!(host.matches_str("API.example.com"));
        assert!(!host.matches_str("example.com"));
    }

    #[test]
    fn refusals() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(Glob::new("a\tb"), Err(GlobError::Control));
        assert_eq!(Glob::new("[ab]"), Err(GlobError::Unsupported('[')));
        assert_eq!(Glob::new("/x/{id}"), Err(GlobError::Unsupported('{')));
        assert!(Glob::literal_brackets("{\"a\"}")
            .unwrap()
            .matches_str("{\"a\"}"));
    }

    #[test]
    fn pathological_patterns_stay_linear_enough() {
        let p = g("*a*a*a*a*a*a*a*a*b");
        let text = vec![b'a'; 10_000];
        assert!(!p.matches(&text));
    }
}
