//! Human durations in the config: "250ms", "3s", "5m", "1h", "1h30m", "1.5s".
//!
//! Parsing is exact (integer nanoseconds, no floating point), so "0.1s" is exactly 100ms.
//! It must never accept a bare number: "3" could mean seconds or milliseconds, and guessing
//! wrong turns a 3 s connect timeout into 3 ms.

use std::time::Duration;

/// Units from largest to smallest; a duration lists each at most once, in this order.
const UNITS: [(&str, u128); 4] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

const UNIT_HELP: &str = "use h, m, s or ms, e.g. \"3s\", \"250ms\" or \"1h30m\"";

/// Parses a duration such as "250ms", "3s", "5m", "1h", "1h30m" or "1.5s".
///
/// Rejects the empty string, numbers without a unit, signs, unknown units, and units that
/// repeat or go from small to large ("30m1h"), since those are more likely typos than intent.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err(format!("empty duration; {UNIT_HELP}"));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    // Index into UNITS of the smallest unit used so far; the next must be smaller.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if number.is_empty() {
            return Err(format!("expected a number before {unit:?}; {UNIT_HELP}"));
        }
        if unit.is_empty() {
            return Err(format!("missing unit after {number:?}; {UNIT_HELP}"));
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit {unit:?}; {UNIT_HELP}"));
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(format!(
                "unit {unit:?} repeated or out of order; write units from largest to smallest, \
                 each once, e.g. \"1h30m\""
            ));
        }
        last_unit = Some(index);
        let nanos = scaled(number, UNITS[index].1)?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| "duration too large".to_string())?;
        rest = after;
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| "duration too large".to_string())?;
    // The remainder is below 1e9, so it always fits.
    let subsec = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

/// `number` (digits, optionally with one '.' and digits after it) times `unit` nanoseconds.
/// Fractions finer than a nanosecond are truncated.
fn scaled(number: &str, unit: u128) -> Result<u128, String> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let malformed = || format!("malformed number {number:?}");
    if whole.is_empty() || number.ends_with('.') || fraction.contains('.') {
        return Err(malformed());
    }
    let too_large = || "duration too large".to_string();
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut nanos = whole.checked_mul(unit).ok_or_else(too_large)?;
    // Each fractional digit is worth a tenth of the previous; once the place value drops below
    // one nanosecond the remaining digits cannot change the result.
    let mut place = unit;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos += u128::from(digit - b'0') * place;
    }
    Ok(nanos)
}

/// Formats a duration the way the config writes it, so `parse_duration(&format_duration(d))`
/// gives `d` back for whole milliseconds. Finer durations use std's `Debug` form ("1.5µs").
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return format!("{d:?}");
    }
    let mut rest = d.as_millis();
    let mut out = String::new();
    for (name, nanos) in UNITS {
        let per = nanos / 1_000_000;
        let count = rest / per;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            rest %= per;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format_duration, parse_duration};
    use std::time::Duration;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse, got error {e}"),
        }
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("3s"), Duration::from_secs(3));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0s"), Duration::ZERO);
    }

    #[test]
    fn parses_compound_and_fractional() {
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok("0.5h"), Duration::from_secs(1800));
        assert_eq!(ok("1.5ms"), Duration::from_micros(1500));
        // Digits below a nanosecond are dropped, not rounded into an error.
        assert_eq!(ok("1.0000000019s"), Duration::new(1, 1));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "3", "-1s", "+1s", "3x", "s", "1.s", ".5s", "1..5s", "1.2.3s", " 3s", "3s ", "3 s",
            "1s1s", "30m1h", "1ms1s", "3S", "1d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn errors_explain_the_problem() {
        assert!(parse_duration("3").unwrap_err().contains("missing unit"));
        assert!(parse_duration("3x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("-1s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
        assert!(parse_duration("9999999999999999999h").is_err());
        assert_eq!(
            ok("5124095576030431h").as_secs(),
            5_124_095_576_030_431 * 3600
        );
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_secs(3),
            Duration::from_secs(3600),
            Duration::from_secs(5400),
            Duration::from_millis(3_723_004),
        ] {
            assert_eq!(ok(&format_duration(d)), d, "{}", format_duration(d));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
    }
}
