//! Unit tests of the top-level JSON member scanner.

use super::{JsonScan, Slot, VALUE_MAX};

const KEYS: [&str; 2] = ["model", "user"];

/// Scans `body` in pieces of `step` bytes (as successive feeds), then ends the body.
fn scan(body: &[u8], step: usize, finish: bool) -> (Slot, Slot) {
    let mut s = JsonScan::new(&KEYS);
    let mut rest = body;
    while !rest.is_empty() && !s.is_done() {
        let piece = &rest[..rest.len().min(step)];
        let n = s.feed(&KEYS, piece);
        assert!(n <= piece.len());
        rest = &rest[n..];
    }
    if finish {
        s.finish();
    }
    (s.slot(0).clone(), s.slot(1).clone())
}

fn found(v: &str) -> Slot {
    Slot::Found(v.to_string())
}

fn every_step(body: &[u8], want: (Slot, Slot)) {
    for step in 1..=body.len().max(1) {
        assert_eq!(scan(body, step, true), want, "step {step}");
    }
}

#[test]
fn finds_top_level_members_after_long_nested_values() {
    let body = br#"{"messages":[{"role":"user","content":"say \"model\": x","model":"nested"}],
        "opts":{"model":"deeper","user":"no"}, "n": 3, "stream": true,
        "model" : "llama-3.1-70b-instruct", "user":"u-42"}"#;
    every_step(body, (found("llama-3.1-70b-instruct"), found("u-42")));
}

#[test]
fn stops_once_every_key_is_settled() {
    let body = br#"{"model":"a","user":"b", garbage that is never read"#;
    let mut s = JsonScan::new(&KEYS);
    let mut used = 0;
    while !s.is_done() {
        used += s.feed(&KEYS, &body[used..]);
    }
    assert_eq!(&body[..used], br#"{"model":"a","user":"b""#);
    // Feeding after the end consumes nothing.
    assert_eq!(s.feed(&KEYS, b"more"), 0);
}

#[test]
fn escapes_are_decoded_in_keys_and_values() {
    every_step(
        br#"{"mo\u0064el":"qw\"en\\\/\u00e9\ud83d\ude00","us\ner":"x"}"#,
        (found("qw\"en\\/é😀"), Slot::Absent),
    );
    // Unpaired surrogates become U+FFFD.
    every_step(
        br#"{"model":"a\ud800b\udc00","user":"\ud800"}"#,
        (found("a\u{fffd}b\u{fffd}"), found("\u{fffd}")),
    );
}

#[test]
fn other_value_kinds_and_absent_keys() {
    every_step(
        br#"{"model":{"name":"x"},"user":12}"#,
        (Slot::NotString, Slot::NotString),
    );
    every_step(br#"{"model":null}"#, (Slot::NotString, Slot::Absent));
    every_step(
        br#"{"a":[1,{"b":"]"}],"user":"x"}"#,
        (Slot::Absent, found("x")),
    );
    every_step(br#"{}"#, (Slot::Absent, Slot::Absent));
    // The first occurrence wins.
    every_step(br#"{"model":"a","model":"b"}"#, (found("a"), Slot::Absent));
}

#[test]
fn not_an_object_or_broken_json_finds_nothing() {
    for body in [
        &br#"["model","x"]"#[..],
        br#"model=x"#,
        br#"{"model" "x"}"#,
        br#"{"model":"a\qb"}"#,
        b"{\"model\":\"a\x01\"}",
        br#"{"model":"\u12g4"}"#,
        br#"{"x":1 "model":"y"}"#,
    ] {
        every_step(body, (Slot::Absent, Slot::Absent));
    }
}

#[test]
fn an_unfinished_body_stays_pending_until_it_ends() {
    let body = br#"{"messages":[{"content":"long"#;
    assert_eq!(scan(body, 3, false), (Slot::Pending, Slot::Pending));
    assert_eq!(scan(body, 3, true), (Slot::Absent, Slot::Absent));
}

#[test]
fn values_and_keys_are_bounded() {
    let long = format!(r#"{{"model":"{}","user":"ok"}}"#, "m".repeat(VALUE_MAX + 1));
    every_step(long.as_bytes(), (Slot::TooLong, found("ok")));
    let edge = format!(r#"{{"model":"{}"}}"#, "m".repeat(VALUE_MAX));
    assert_eq!(
        scan(edge.as_bytes(), 7, true).0,
        found(&"m".repeat(VALUE_MAX))
    );
    // A key longer than any wanted one is skipped without being kept.
    let key = format!(r#"{{"{}model":"x","model":"y"}}"#, "k".repeat(10_000));
    let mut s = JsonScan::new(&KEYS);
    s.feed(&KEYS, key.as_bytes());
    assert!(s.key.capacity() <= 64, "{}", s.key.capacity());
    assert_eq!(s.slot(0), &found("y"));
}

#[test]
fn deep_nesting_is_only_a_counter() {
    let mut body = b"{\"a\":".to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.extend(br#","model":"deep"}"#);
    assert_eq!(scan(&body, 4096, true).0, found("deep"));
}
