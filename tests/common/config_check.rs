//! Helpers of the config tests: a file from lines (so a line number in an assertion is the
//! 1-based index in the slice), and asserting where and why parsing fails.

use ringlb::config::{parse, Config, ConfigError};

/// Joins lines with '\n' so that line numbers in assertions are the 1-based index in `lines`.
pub fn text(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

pub fn ok(lines: &[&str]) -> Config {
    match parse(&text(lines), "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

/// Asserts that parsing fails at `at` ("line:col") with a one-line message containing `needles`.
pub fn fails(lines: &[&str], at: &str, needles: &[&str]) -> ConfigError {
    let err = match parse(&text(lines), "t.toml") {
        Ok(c) => panic!("expected an error at {at}, got {c:?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("t.toml:{at}: ")),
        "wrong place: {msg}"
    );
    assert!(!msg.contains('\n'), "not one line: {msg:?}");
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    err
}

/// "line:col" of the first occurrence of `token` on the first line containing `line`.
pub fn at(lines: &[&str], line: &str, token: &str) -> String {
    let (i, l) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(line))
        .unwrap_or_else(|| panic!("no line with {line:?}"));
    let col = l[..l.find(token).expect("token on the line")]
        .chars()
        .count()
        + 1;
    format!("{}:{col}", i + 1)
}

/// Borrows each line, for the helpers above.
pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
