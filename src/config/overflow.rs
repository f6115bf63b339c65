//! Integers too large (or too small) for TOML, reported like any other out-of-range value.
//!
//! TOML integers are 64-bit, so `weight = 99999999999999999999` fails in the parser, before
//! serde knows which key or table it belongs to; its message would name neither the pool and
//! backend nor the key's valid range. Here each such literal is replaced, in a copy of the
//! text, by `i64::MAX` (or `i64::MIN`) padded with spaces to the same length, so that every
//! byte offset stays where it was, and the copy is parsed again. The range check of the key
//! then rejects the stand-in (every integer key's bound lies well inside i64) with its usual
//! message, showing the literal as written. This module must never let a stand-in pass: if
//! the copy parses and validates, the caller reports the parser's original error.

use std::borrow::Cow;

use super::error::{ConfigError, Locator};
use super::raw::RawConfig;

/// What toml says about an integer literal outside i64.
const OVERFLOW_MESSAGES: [&str; 2] = [
    "number too large to fit in target type",
    "number too small to fit in target type",
];

/// A file with more oversized literals than this gets the parser's plain message for the
/// first one: each stand-in costs a parse of the whole file.
const MAX_STAND_INS: usize = 16;

/// A file read with stand-ins for its oversized integer literals.
pub(super) struct StoodIn {
    pub raw: RawConfig,
    /// `(byte offset, text as written)` of each literal replaced.
    pub literals: Vec<(usize, String)>,
    /// The parser's error for the first of them: what to report should the stand-ins pass.
    pub parse_error: Option<ConfigError>,
}

/// Parses `text`; oversized integer literals are read as stand-ins. Any other syntax error
/// is reported as the parser's first error in the file.
pub(super) fn read_raw(text: &str, loc: &Locator) -> Result<StoodIn, ConfigError> {
    let mut current = Cow::Borrowed(text);
    let mut literals = Vec::new();
    let mut parse_error: Option<ConfigError> = None;
    loop {
        let error = match toml::from_str::<RawConfig>(&current) {
            Ok(raw) => {
                return Ok(StoodIn {
                    raw,
                    literals,
                    parse_error,
                })
            }
            Err(e) => e,
        };
        let located = loc.syntax(&error);
        let start = error.span().map(|s| s.start);
        let replaced = match start {
            Some(start)
                if OVERFLOW_MESSAGES.contains(&error.message())
                    && literals.len() < MAX_STAND_INS =>
            {
                stand_in(&current, start).map(|r| (start, r))
            }
            _ => None,
        };
        let Some((start, (literal, text))) = replaced else {
            return Err(parse_error.unwrap_or(located));
        };
        parse_error.get_or_insert(located);
        literals.push((start, literal));
        current = Cow::Owned(text);
    }
}

/// The integer literal starting at byte `start` of `text`, and `text` with it replaced by a
/// same-length stand-in; None if there is no literal there or it is too short to replace.
fn stand_in(text: &str, start: usize) -> Option<(String, String)> {
    let rest = text.get(start..)?;
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '+' || c == '-'))
        .unwrap_or(rest.len());
    let literal = &rest[..len];
    let value = if literal.starts_with('-') {
        i64::MIN.to_string()
    } else if literal.starts_with("0x") || literal.starts_with("0o") || literal.starts_with("0b") {
        format!("{:#x}", i64::MAX)
    } else {
        i64::MAX.to_string()
    };
    if literal.is_empty() || value.len() > len {
        return None;
    }
    let replaced = format!("{}{value:<len$}{}", &text[..start], &rest[len..]);
    Some((literal.to_string(), replaced))
}

#[cfg(test)]
mod tests {
    use super::stand_in;
    use crate::config::parse;

    const BASE: &str = "[[listener]]\nname = \"llm\"\nbind = \"127.0.0.1:0\"\npool = \"gpu\"\n\
                        [[pool]]\nname = \"gpu\"\n[[pool.backend]]\naddr = \"127.0.0.1:9001\"\n";

    fn error(extra: &str) -> String {
        match parse(&format!("{BASE}{extra}\n"), "t.toml") {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn stand_ins_keep_every_offset() {
        for literal in [
            "99999999999999999999",
            "-9223372036854775809",
            "+9223372036854775808",
            "0x8000000000000000",
        ] {
            let text = format!("a = {literal} # x\nb = 1");
            let (seen, replaced) = stand_in(&text, 4).unwrap();
            assert_eq!(seen, literal);
            assert_eq!(replaced.len(), text.len(), "{replaced:?}");
            assert!(replaced.ends_with(" # x\nb = 1"), "{replaced:?}");
        }
        assert_eq!(stand_in("a = 12", 4), None, "too short to hold a stand-in");
        assert_eq!(stand_in("a = ", 4), None);
    }

    #[test]
    fn oversized_integers_name_their_table_and_range() {
        assert_eq!(
            error("weight = 99999999999999999999"),
            "t.toml:9:10: pool \"gpu\" backend 1: `weight` must be at most 1000000, \
             got 99999999999999999999"
        );
        assert_eq!(
            error("tier = -99999999999999999999"),
            "t.toml:9:8: pool \"gpu\" backend 1: `tier` must be at least 0, \
             got -99999999999999999999"
        );
        let two = error("max_connections = 0x1_0000_0000_0000_0000\ntier = 99999999999999999999");
        assert!(
            two.starts_with(
                "t.toml:9:19: pool \"gpu\" backend 1: `max_connections` must be at \
                             most 4294967295, got 0x1_0000_0000_0000_0000"
            ),
            "{two}"
        );
        let runtime = parse(
            &format!("[runtime]\nring_entries = 99999999999999999999\n{BASE}"),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            runtime.ends_with("power of two from 64 to 32768, got 99999999999999999999"),
            "{runtime}"
        );
    }

    #[test]
    fn other_syntax_errors_are_reported_as_before() {
        let both = error("weight = 99999999999999999999\ntier = ");
        assert!(
            both.starts_with("t.toml:9:10: `weight`: number too large"),
            "{both}"
        );
        let float = error("weight = 99999999999999999999\ntier = 1e999");
        assert!(
            float.starts_with("t.toml:9:10: `weight`: number too large"),
            "{float}"
        );
    }
}
