//! Unit tests of the per-connection driver: the issue's example table, every way a peek ends,
//! and byte-at-a-time feeding giving the verdict of one chunk.

use super::{Peek, Reason, Verdict};
use crate::route::glob::Glob;
use crate::route::matcher::Matcher;
use crate::route::proxy::{encode_v1, ProxyHeader, ProxyVersion};
use crate::route::rules::{PeekSettings, Routes, Rule, SessionKey};
use crate::route::session_hash;
use std::sync::Arc;

const GENERAL: usize = 0;
const REALTIME: usize = 1;
const EMBED: usize = 2;
const LARGE: usize = 3;
const BATCH: usize = 4;
const TLS_GPU: usize = 5;

/// The table of issue 13's example, with these settings and pool keys.
fn routes(settings: PeekSettings, keys: &[Option<SessionKey>]) -> Arc<Routes> {
    let g = |p: &str| vec![Glob::new(p).unwrap()];
    let rules = vec![
        Rule {
            pool: REALTIME,
            matchers: vec![
                Matcher::WebSocket(true),
                Matcher::PathPrefix(vec!["/v1/realtime".into()]),
            ],
        },
        Rule {
            pool: EMBED,
            matchers: vec![Matcher::PathPrefix(vec!["/v1/embeddings".into()])],
        },
        Rule {
            pool: LARGE,
            matchers: vec![Matcher::Model(g("llama-3.1-70b*"))],
        },
        Rule {
            pool: BATCH,
            matchers: vec![Matcher::Header {
                name: "x-tier".into(),
                value: Glob::new("batch").unwrap(),
            }],
        },
        Rule {
            pool: TLS_GPU,
            matchers: vec![Matcher::Sni(vec![
                Glob::caseless("*.internal.example").unwrap()
            ])],
        },
    ];
    Arc::new(Routes::new(GENERAL, rules, settings, keys))
}

fn example() -> Arc<Routes> {
    routes(PeekSettings::default(), &[])
}

/// The verdict of `bytes` fed in one call, asserted equal to feeding it one byte more per
/// call (NeedMore until then); `then` is applied when it is still NeedMore at the end.
fn verdict_with(
    routes: &Arc<Routes>,
    bytes: &[u8],
    then: fn(&mut Peek, &[u8]) -> Verdict,
) -> Verdict {
    let mut one = Peek::new(routes.clone());
    let mut whole = one.feed(bytes);
    if whole == Verdict::NeedMore {
        whole = then(&mut one, bytes);
    }
    let mut p = Peek::new(routes.clone());
    let mut got = Verdict::NeedMore;
    for n in 0..=bytes.len() {
        got = p.feed(&bytes[..n]);
        if got != Verdict::NeedMore {
            break;
        }
    }
    if got == Verdict::NeedMore {
        got = then(&mut p, bytes);
    }
    assert_eq!(got, whole, "byte at a time vs one chunk");
    // A decided peek repeats itself.
    assert_eq!(p.feed(bytes), whole);
    whole
}

fn verdict(routes: &Arc<Routes>, bytes: &[u8]) -> Verdict {
    verdict_with(routes, bytes, |p, b| p.feed(b))
}

fn to(pool: usize, rule: Option<usize>) -> Verdict {
    Verdict::Route {
        pool,
        rule,
        hash: None,
        proxy: None,
        skip: 0,
        body_capped: false,
    }
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(path: &str, body: &str, per: usize) -> Vec<u8> {
    let mut out =
        format!("POST {path} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for part in body.as_bytes().chunks(per) {
        out.extend(format!("{:x};e=1\r\n", part.len()).as_bytes());
        out.extend(part);
        out.extend(b"\r\n");
    }
    out.extend(b"0\r\n\r\n");
    out
}

#[test]
fn the_example_table() {
    let r = example();
    let ws = b"GET /v1/realtime/s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(verdict(&r, ws), to(REALTIME, Some(0)));
    assert_eq!(
        verdict(&r, &post("/v1/embeddings", r#"{"model":"llama-3.1-70b"}"#)),
        to(EMBED, Some(1))
    );
    let body = r#"{"messages":[],"model":"llama-3.1-70b-instruct"}"#;
    assert_eq!(
        verdict(&r, &post("/v1/completions", body)),
        to(LARGE, Some(2))
    );
    let other = post("/v1/completions", r#"{"model":"qwen-7b"}"#);
    assert_eq!(verdict(&r, &other), to(GENERAL, None));
    let batch = b"GET /v1/models HTTP/1.1\r\nX-Tier: batch\r\n\r\n";
    assert_eq!(verdict(&r, batch), to(BATCH, Some(3)));
    assert_eq!(verdict(&r, b"\x00\x01garbage\r\n\r\n"), to(GENERAL, None));
}

#[test]
fn model_after_a_long_history_plain_and_chunked() {
    let r = example();
    let history = "x".repeat(100 * 1024);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{history}","model":"nested-no"}}],"model":"llama-3.1-70b-instruct","stream":true}}"#
    );
    let mut p = Peek::new(r.clone());
    assert_eq!(
        p.feed(&post("/v1/chat/completions", &body)),
        to(LARGE, Some(2))
    );
    let mut p = Peek::new(r.clone());
    assert_eq!(
        p.feed(&chunked("/v1/chat/completions", &body, 4000)),
        to(LARGE, Some(2))
    );
    // Byte at a time on a shorter body (the full one would be slow in debug builds).
    let short = r#"{"messages":[{"model":"llama-3.1-70b"}],"model":"llama-3.1-70b-instruct"}"#;
    assert_eq!(
        verdict(&r, &chunked("/v1/chat", short, 7)),
        to(LARGE, Some(2))
    );
    let nested = r#"{"messages":[{"model":"llama-3.1-70b"}],"model":"qwen"}"#;
    assert_eq!(
        verdict(&r, &chunked("/v1/chat", nested, 5)),
        to(GENERAL, None)
    );
}

#[test]
fn tls_passthrough_by_sni() {
    let r = example();
    // A minimal ClientHello with SNI a.internal.example, built by hand.
    let name = b"a.internal.example";
    let mut sni = vec![0u8];
    sni.extend((name.len() as u16).to_be_bytes());
    sni.extend(name);
    let mut ext = vec![0, 0];
    ext.extend(((sni.len() + 2) as u16).to_be_bytes());
    ext.extend((sni.len() as u16).to_be_bytes());
    ext.extend(sni);
    let mut body = vec![3, 3];
    body.extend([0u8; 32]);
    body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![1, 0, 0, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![22, 3, 1, 0, hs.len() as u8];
    rec.extend(hs);
    assert_eq!(verdict(&r, &rec), to(TLS_GPU, Some(4)));
}

#[test]
fn how_a_peek_ends_without_a_decision() {
    let r = example();
    let timeout = |p: &mut Peek, b: &[u8]| p.on_timeout(b);
    let eof = |p: &mut Peek, b: &[u8]| p.on_eof(b);
    assert_eq!(
        verdict_with(&r, b"", timeout),
        Verdict::Reject(Reason::Timeout)
    );
    assert_eq!(verdict_with(&r, b"", eof), Verdict::Reject(Reason::Closed));
    // A slowloris head: closed at the timeout; a half-closed one goes to the default pool.
    assert_eq!(
        verdict_with(&r, b"GET /v1/emb", timeout),
        Verdict::Reject(Reason::Timeout)
    );
    assert_eq!(verdict_with(&r, b"GET /v1/emb", eof), to(GENERAL, None));
    // The head is known, the body is not: rules without `model` still decide.
    let head =
        b"POST /v1/chat HTTP/1.1\r\nX-Tier: batch\r\nContent-Length: 100\r\n\r\n{\"messages\":[";
    assert_eq!(verdict_with(&r, head, timeout), to(BATCH, Some(3)));
    assert_eq!(verdict_with(&r, head, eof), to(BATCH, Some(3)));
    // peek_max bytes of an unfinished head.
    let small = routes(
        PeekSettings {
            max: 64,
            ..PeekSettings::default()
        },
        &[],
    );
    let long = [b"GET /".as_slice(), &[b'a'; 100]].concat();
    assert_eq!(verdict(&small, &long), Verdict::Reject(Reason::PeekMax));
    assert_eq!(verdict(&small, &long[..63]), Verdict::NeedMore);
}

#[test]
fn a_body_past_peek_body_max_goes_to_the_default_pool_flagged() {
    let r = routes(
        PeekSettings {
            body_max: 64,
            ..PeekSettings::default()
        },
        &[],
    );
    let body = format!(
        r#"{{"messages":"{}","model":"llama-3.1-70b"}}"#,
        "m".repeat(100)
    );
    let mut capped = to(GENERAL, None);
    if let Verdict::Route { body_capped, .. } = &mut capped {
        *body_capped = true;
    }
    assert_eq!(verdict(&r, &post("/v1/chat", &body)), capped);
    assert_eq!(verdict(&r, &chunked("/v1/chat", &body, 10)), capped);
    // Within the cap it is found.
    assert_eq!(
        verdict(&r, &post("/v1/chat", r#"{"model":"llama-3.1-70b"}"#)),
        to(LARGE, Some(2))
    );
}

#[test]
fn session_hashes_from_a_header_or_a_json_member() {
    let keys = [
        Some(SessionKey::Header("x-session-id".into())),
        None,
        None,
        Some(SessionKey::Json("user".into())),
    ];
    let r = routes(PeekSettings::default(), &keys);
    let with = |pool, rule, value: Option<&str>| Verdict::Route {
        pool,
        rule,
        hash: value.map(|v| session_hash(v.as_bytes())),
        proxy: None,
        skip: 0,
        body_capped: false,
    };
    let req = b"GET /v1/models HTTP/1.1\r\nX-Session-Id: s-1\r\n\r\n";
    assert_eq!(verdict(&r, req), with(GENERAL, None, Some("s-1")));
    assert_eq!(
        verdict(&r, b"GET / HTTP/1.1\r\n\r\n"),
        with(GENERAL, None, None)
    );
    let body = r#"{"model":"llama-3.1-70b","x":[{"user":"no"}],"user":"u-7"}"#;
    assert_eq!(
        verdict(&r, &post("/v1/chat", body)),
        with(LARGE, Some(2), Some("u-7"))
    );
    let body = r#"{"model":"llama-3.1-70b","user":7}"#;
    assert_eq!(
        verdict(&r, &post("/v1/chat", body)),
        with(LARGE, Some(2), None)
    );
}

#[test]
fn proxy_headers_on_accept_proxy_listeners() {
    let settings = PeekSettings {
        accept_proxy: true,
        ..PeekSettings::default()
    };
    let r = routes(settings, &[]);
    let src = "192.0.2.9:5000".parse().unwrap();
    let dst = "10.0.0.1:8000".parse().unwrap();
    let mut bytes = encode_v1(src, dst).as_bytes().to_vec();
    let skip = bytes.len();
    bytes.extend(b"GET /v1/embeddings HTTP/1.1\r\n\r\n");
    let want = Verdict::Route {
        pool: EMBED,
        rule: Some(1),
        hash: None,
        proxy: Some(ProxyHeader {
            version: ProxyVersion::V1,
            src: Some(src),
            dst: Some(dst),
        }),
        skip,
        body_capped: false,
    };
    assert_eq!(verdict(&r, &bytes), want);
    assert_eq!(
        verdict(&r, b"GET / HTTP/1.1\r\n\r\n"),
        Verdict::Reject(Reason::BadProxy)
    );
    let eof = |p: &mut Peek, b: &[u8]| p.on_eof(b);
    assert_eq!(
        verdict_with(&r, b"PROXY TCP4 1.2", eof),
        Verdict::Reject(Reason::BadProxy)
    );
    // Only a PROXY header to read: decided as soon as it is complete.
    let only = Arc::new(Routes::new(7, vec![], settings, &[]));
    let header = encode_v1(src, dst);
    match verdict(&only, header.as_bytes()) {
        Verdict::Route {
            pool: 7,
            skip,
            proxy: Some(_),
            ..
        } => assert_eq!(skip, header.as_bytes().len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_listener_without_rules_decides_at_once() {
    let r = Arc::new(Routes::passthrough(3));
    assert_eq!(Peek::new(r).feed(b""), to(3, None));
}

#[test]
fn a_peek_is_small_and_survives_a_shrinking_buffer() {
    assert!(
        std::mem::size_of::<Peek>() <= 40,
        "{}",
        std::mem::size_of::<Peek>()
    );
    let r = example();
    let mut p = Peek::new(r);
    let bytes = post(
        "/v1/chat",
        r#"{"messages":[1,2,3],"model":"llama-3.1-70b"}"#,
    );
    assert_eq!(p.feed(&bytes[..bytes.len() - 5]), Verdict::NeedMore);
    assert_eq!(p.feed(&bytes[..10]), Verdict::NeedMore);
    assert_eq!(p.feed(&bytes), to(LARGE, Some(2)));
}
