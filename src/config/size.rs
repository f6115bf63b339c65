//! Byte sizes as the config writes them: an integer (bytes) or a string with a binary unit,
//! `"512B"`, `"16KiB"`, `"64MiB"`, `"1GiB"` (`peek_max`, `peek_body_max`, `peek_memory_max`).
//!
//! Only binary units are accepted, spelled exactly: "16KB" or "16k" would leave the operator
//! guessing between 16000 and 16384 bytes, so they are refused with the units that exist. This
//! must never accept a size that overflows u64 or a negative one.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A size as written: a TOML integer, or a string.
#[derive(Debug)]
pub(super) enum RawSize {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a size: bytes as an integer, or a string such as \"16KiB\" or \"64MiB\"",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

const UNITS: [(&str, u64); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// The bytes `raw` stands for, or why it is not a size.
pub(super) fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let text = match raw {
        RawSize::Int(n) => {
            return u64::try_from(*n).map_err(|_| "a size cannot be negative".into())
        }
        RawSize::Text(t) => t.trim(),
    };
    let (digits, unit) = match UNITS.iter().find(|(u, _)| text.ends_with(u)) {
        Some((u, mult)) => (&text[..text.len() - u.len()], *mult),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => (text, 1),
        None => {
            return Err(
                "expected a number of bytes or a number with a unit: B, KiB, MiB, GiB \
                        (binary: 1KiB = 1024 bytes)"
                    .into(),
            )
        }
    };
    let digits = digits.trim_end();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number before the unit, such as \"16KiB\"".into());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| "too large".into())
}

/// `n` bytes the way the summary and messages show them: "16KiB", "300B".
pub fn format_size(n: u64) -> String {
    for (unit, mult) in UNITS {
        if mult > 1 && n >= mult && n % mult == 0 {
            return format!("{}{unit}", n / mult);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::{format_size, parse_size, RawSize};

    fn text(s: &str) -> Result<u64, String> {
        parse_size(&RawSize::Text(s.into()))
    }

    #[test]
    fn sizes() {
        assert_eq!(text("16KiB"), Ok(16384));
        assert_eq!(text("256KiB"), Ok(262_144));
        assert_eq!(text("64MiB"), Ok(64 << 20));
        assert_eq!(text("1GiB"), Ok(1 << 30));
        assert_eq!(text("512B"), Ok(512));
        assert_eq!(text("4096"), Ok(4096));
        assert_eq!(text("16 KiB"), Ok(16384));
        assert_eq!(parse_size(&RawSize::Int(0)), Ok(0));
        assert!(parse_size(&RawSize::Int(-1)).is_err());
        for bad in [
            "16KB",
            "16k",
            "1.5MiB",
            "KiB",
            "",
            "-1KiB",
            "99999999999999999999GiB",
        ] {
            assert!(text(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(16384), "16KiB");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }
}
