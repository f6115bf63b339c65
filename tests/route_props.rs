//! Property tests of the content-routing parsers (src/route/): random and mutated inputs never
//! panic, never report a consumed length, a skip or a body position past the input or past the
//! caps, and a `Peek` fed a growing buffer (one byte more per call, or random cuts) gives the
//! verdict of one chunk. Also a real ClientHello, captured once, cut at every byte.

use proptest::prelude::*;
use ringlb::route::{
    encode_v1, encode_v2, parse_client_hello, parse_head, parse_proxy, Chunked, ChunkedStatus,
    Glob, HttpParse, JsonScan, Matcher, Peek, PeekSettings, ProxyParse, Reason, Routes, Rule,
    SessionKey, Slot, TlsParse, Verdict,
};
use std::net::SocketAddr;
use std::sync::Arc;

/// A ClientHello from `openssl s_client -servername a.internal.example -alpn h2,http/1.1
/// -connect 127.0.0.1:PORT` (OpenSSL 3.0.19), captured once: a Python socket listening on
/// 127.0.0.1 read the client's first record and wrote it out; printed here as hex.
const OPENSSL_HELLO: [u8; 342] = [
    0x16, 0x03, 0x01, 0x01, 0x51, 0x01, 0x00, 0x01, 0x4d, 0x03, 0x03, 0x9c, 0x8a, 0xbf, 0x66, 0xd0,
    0x59, 0x47, 0x22, 0x60, 0xfc, 0x71, 0xca, 0x18, 0x90, 0x28, 0xb1, 0xab, 0xc5, 0xe9, 0xb7, 0x14,
    0x0b, 0xd0, 0xc0, 0x4d, 0x89, 0xa8, 0x23, 0xce, 0xf8, 0xa8, 0xc8, 0x20, 0xe8, 0x16, 0xa1, 0x25,
    0xfb, 0x79, 0xe5, 0x66, 0xd6, 0xeb, 0x10, 0x03, 0xfe, 0x87, 0x93, 0x4b, 0x2f, 0x87, 0xd6, 0x0b,
    0xfa, 0x73, 0xd3, 0x73, 0x64, 0xc2, 0x89, 0x45, 0x9e, 0x2c, 0x66, 0x39, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc6,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x15, 0x00, 0x00, 0x12, 0x61, 0x2e, 0x69, 0x6e, 0x74, 0x65, 0x72,
    0x6e, 0x61, 0x6c, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x0b, 0x00, 0x04, 0x03,
    0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
    0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00,
    0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f,
    0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00,
    0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08,
    0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03,
    0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04,
    0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26,
    0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x3e, 0xbc, 0x30, 0xf0, 0xb5, 0xff, 0x1b, 0xc2, 0xd9, 0x70,
    0x68, 0x69, 0x07, 0x4d, 0xe8, 0xd2, 0xf3, 0x03, 0x42, 0x0e, 0xc1, 0x99, 0x8c, 0x3b, 0xaa, 0xb4,
    0x5c, 0x35, 0x75, 0x21, 0x53, 0x47,
];

fn head_of(bytes: &[u8]) -> Option<usize> {
    match parse_head(bytes) {
        HttpParse::Head(h) => Some(h.head_len),
        _ => None,
    }
}

#[test]
fn the_captured_client_hello() {
    let want = |r: TlsParse| match r {
        TlsParse::ClientHello(h) => {
            assert_eq!(h.sni.as_deref(), Some("a.internal.example"));
            assert_eq!(h.alpn, ["h2", "http/1.1"]);
            assert_eq!(h.len, OPENSSL_HELLO.len());
        }
        other => panic!("{other:?}"),
    };
    want(parse_client_hello(&OPENSSL_HELLO, 16384));
    for cut in 0..OPENSSL_HELLO.len() {
        assert_eq!(
            parse_client_hello(&OPENSSL_HELLO[..cut], 16384),
            TlsParse::NeedMore,
            "cut {cut}"
        );
        assert_eq!(
            parse_client_hello(&OPENSSL_HELLO, cut),
            TlsParse::NeedMore,
            "cap {cut}"
        );
    }
    // The same handshake message re-cut into records of every size from 1 byte up.
    let msg = &OPENSSL_HELLO[5..];
    for per in 1..=msg.len() {
        let mut records = Vec::new();
        for part in msg.chunks(per) {
            records.extend([22, 3, 1]);
            records.extend((part.len() as u16).to_be_bytes());
            records.extend(part);
        }
        match parse_client_hello(&records, 1 << 20) {
            TlsParse::ClientHello(h) => {
                assert_eq!(
                    h.sni.as_deref(),
                    Some("a.internal.example"),
                    "records of {per}"
                );
                assert_eq!(h.len, records.len());
            }
            other => panic!("records of {per}: {other:?}"),
        }
    }
    // Every single-byte corruption: any answer but a panic, and lengths in bounds.
    for i in 0..OPENSSL_HELLO.len() {
        for x in [0x00, 0xff, 0x80] {
            let mut bad = OPENSSL_HELLO;
            bad[i] ^= x ^ bad[i].rotate_left(1);
            if let TlsParse::ClientHello(h) = parse_client_hello(&bad, 16384) {
                assert!(h.len <= bad.len());
            }
        }
    }
}

/// The routing table of issue 13 (pools 0..=5), a hash pool with a json key (6) reached by
/// `path_prefix = "/v1/session"`, and a header-keyed default pool.
fn routes(accept_proxy: bool, max: usize, body_max: usize) -> Arc<Routes> {
    let g = |p: &str| vec![Glob::new(p).unwrap()];
    let rule = |pool, matchers| Rule { pool, matchers };
    let rules = vec![
        rule(
            1,
            vec![
                Matcher::WebSocket(true),
                Matcher::PathPrefix(vec!["/v1/realtime".into()]),
            ],
        ),
        rule(2, vec![Matcher::PathPrefix(vec!["/v1/embeddings".into()])]),
        rule(6, vec![Matcher::PathPrefix(vec!["/v1/session".into()])]),
        rule(3, vec![Matcher::Model(g("llama-3.1-70b*"))]),
        rule(
            4,
            vec![Matcher::Header {
                name: "x-tier".into(),
                value: Glob::new("batch").unwrap(),
            }],
        ),
        rule(
            5,
            vec![Matcher::Sni(vec![
                Glob::caseless("*.internal.example").unwrap()
            ])],
        ),
    ];
    let mut keys: Vec<Option<SessionKey>> = vec![None; 7];
    keys[0] = Some(SessionKey::Header("x-session-id".into()));
    keys[6] = Some(SessionKey::Json("user".into()));
    let settings = PeekSettings {
        accept_proxy,
        max,
        body_max,
        ..PeekSettings::default()
    };
    Arc::new(Routes::new(0, rules, settings, &keys))
}

/// Inputs worth mutating: requests the table routes, in several framings.
fn seeds() -> Vec<Vec<u8>> {
    let body = r#"{"messages":[{"role":"user","content":"hi \"model\"","model":"x"}],"model":"llama-3.1-70b-instruct","user":"u-1"}"#;
    let mut chunked = b"POST /v1/session HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.as_bytes().chunks(9) {
        chunked.extend(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend(part);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let plain = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let ws = b"GET /v1/realtime HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec();
    let mut proxied = encode_v2(
        "10.1.2.3:4000".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    )
    .as_bytes()
    .to_vec();
    proxied.extend(b"GET /v1/embeddings HTTP/1.1\r\nX-Session-Id: s\r\n\r\n");
    let mut proxied_v1 = encode_v1(
        "10.1.2.3:4000".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    )
    .as_bytes()
    .to_vec();
    proxied_v1.extend_from_slice(&OPENSSL_HELLO);
    vec![
        plain.into_bytes(),
        chunked,
        ws,
        OPENSSL_HELLO.to_vec(),
        proxied,
        proxied_v1,
    ]
}

/// A seed, cut and with some bytes replaced.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = seeds().len();
    (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(i, edits, cut)| {
            let mut s = seeds().swap_remove(i);
            for (at, b) in edits {
                let at = at.index(s.len());
                s[at] = b;
            }
            let keep = cut.index(s.len() + 1).max(s.len() * 3 / 4);
            s.truncate(keep);
            s
        })
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => mutated(),
        1 => proptest::collection::vec(any::<u8>(), 0..600),
    ]
}

/// Checks a verdict's bounds against the input and the caps.
fn in_bounds(v: &Verdict, buf: &[u8], max: usize) {
    match v {
        Verdict::Route { skip, proxy, .. } => {
            assert!(
                *skip <= buf.len() && *skip <= max,
                "skip {skip} of {} (max {max})",
                buf.len()
            );
            assert_eq!(*skip > 0, proxy.is_some());
        }
        Verdict::Reject(Reason::PeekMax) => assert!(buf.len() >= max),
        _ => {}
    }
}

/// The verdict of `buf` fed whole, then at the cuts, then one byte more per call: all equal.
fn same_however_split(routes: &Arc<Routes>, buf: &[u8], cuts: &[prop::sample::Index]) -> Verdict {
    let finish = |p: &mut Peek, v: Verdict| {
        if v == Verdict::NeedMore {
            p.on_eof(buf)
        } else {
            v
        }
    };
    let mut whole = Peek::new(routes.clone());
    let first = whole.feed(buf);
    let want = finish(&mut whole, first);
    in_bounds(&want, buf, routes.settings().max);
    let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(buf.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(buf.len());
    for steps in [ends, (0..=buf.len()).collect::<Vec<_>>()] {
        let mut p = Peek::new(routes.clone());
        let mut got = Verdict::NeedMore;
        for end in steps {
            got = p.feed(&buf[..end]);
            if got != Verdict::NeedMore {
                break;
            }
        }
        let got = finish(&mut p, got);
        prop_assert_eq_fn(&got, &want, buf);
    }
    want
}

fn prop_assert_eq_fn(got: &Verdict, want: &Verdict, buf: &[u8]) {
    assert_eq!(
        got,
        want,
        "split feeding differs for {:?}",
        String::from_utf8_lossy(buf)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tls_reader_stays_in_bounds(buf in inputs(), cap in 0usize..700) {
        if let TlsParse::ClientHello(h) = parse_client_hello(&buf, cap) {
            prop_assert!(h.len <= buf.len().min(cap));
        }
    }

    #[test]
    fn http_reader_stays_in_bounds(buf in inputs()) {
        if let Some(n) = head_of(&buf) {
            prop_assert!(n <= buf.len());
        }
    }

    #[test]
    fn proxy_reader_stays_in_bounds(buf in inputs(), cap in 0usize..700) {
        if let ProxyParse::Header { consumed, .. } = parse_proxy(&buf, cap) {
            prop_assert!(consumed <= buf.len().min(cap));
        }
    }

    #[test]
    fn proxy_writers_round_trip(a in any::<[u8; 16]>(), b in any::<u32>(), sp in any::<u16>(), dp in any::<u16>(), v6 in any::<bool>()) {
        let src: SocketAddr = if v6 { (std::net::Ipv6Addr::from(a), sp).into() } else { (std::net::Ipv4Addr::from(b), sp).into() };
        let dst: SocketAddr = (std::net::Ipv4Addr::from(b.rotate_left(7)), dp).into();
        for enc in [encode_v1(src, dst), encode_v2(src, dst)] {
            match parse_proxy(enc.as_bytes(), 4096) {
                ProxyParse::Header { header, consumed } => {
                    prop_assert_eq!(consumed, enc.as_bytes().len());
                    let (s, d) = (header.src.unwrap(), header.dst.unwrap());
                    prop_assert_eq!((s.port(), d.port()), (sp, dp));
                    let canon = |x: SocketAddr| x.ip().to_canonical();
                    prop_assert_eq!((canon(s), canon(d)), (canon(src), canon(dst)));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn json_scan_is_split_invariant_and_bounded(buf in inputs(), cut in any::<prop::sample::Index>()) {
        let keys = ["model", "user"];
        let run = |pieces: &[&[u8]]| {
            let mut s = JsonScan::new(&keys);
            for piece in pieces {
                let mut rest: &[u8] = piece;
                while !rest.is_empty() && !s.is_done() {
                    let n = s.feed(&keys, rest);
                    assert!(n <= rest.len());
                    rest = &rest[n..];
                }
            }
            s.finish();
            (s.slot(0).clone(), s.slot(1).clone())
        };
        let at = cut.index(buf.len() + 1);
        let whole = run(&[&buf]);
        prop_assert_eq!(run(&[&buf[..at], &buf[at..]]), whole.clone());
        for slot in [&whole.0, &whole.1] {
            if let Slot::Found(v) = slot {
                prop_assert!(v.len() <= ringlb::route::VALUE_MAX + 3);
            }
        }
    }

    #[test]
    fn chunked_decoder_is_split_invariant(buf in inputs(), cut in any::<prop::sample::Index>()) {
        let run = |pieces: &[&[u8]]| {
            let mut d = Chunked::new();
            let mut out = Vec::new();
            let mut used = 0;
            for piece in pieces {
                let (n, status) = d.feed(piece, |p| { out.extend_from_slice(p); p.len() });
                assert!(n <= piece.len());
                used += n;
                if status != ChunkedStatus::More { break; }
            }
            (out, d.status(), used)
        };
        let at = cut.index(buf.len() + 1);
        let whole = run(&[&buf]);
        prop_assert!(whole.0.len() <= buf.len());
        prop_assert_eq!(run(&[&buf[..at], &buf[at..]]), whole);
    }

    #[test]
    fn peek_never_panics_and_any_split_gives_the_same_verdict(
        buf in inputs(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        proxy in any::<bool>(),
        small in any::<bool>(),
    ) {
        let (max, body_max) = if small { (1024, 40) } else { (16384, 262_144) };
        let r = routes(proxy, max, body_max);
        same_however_split(&r, &buf, &cuts);
        // A timeout at any point gives a verdict in bounds too.
        let at = cuts.first().map_or(buf.len(), |c| c.index(buf.len() + 1));
        let mut p = Peek::new(r);
        let _ = p.feed(&buf[..at]);
        in_bounds(&p.on_timeout(&buf[..at]), &buf[..at], max);
    }
}

#[test]
fn the_seeds_route_where_the_table_says() {
    let r = routes(false, 16384, 262_144);
    let v: Vec<Verdict> = seeds()
        .iter()
        .map(|s| same_however_split(&r, s, &[]))
        .collect();
    let pool = |v: &Verdict| match v {
        Verdict::Route { pool, .. } => *pool,
        other => panic!("{other:?}"),
    };
    assert_eq!(pool(&v[0]), 3, "model after messages");
    assert_eq!(pool(&v[1]), 6, "the session path");
    assert!(
        matches!(v[1], Verdict::Route { hash: Some(_), .. }),
        "json:user hashed"
    );
    assert_eq!(pool(&v[2]), 1, "websocket");
    assert_eq!(pool(&v[3]), 5, "sni");
    assert_eq!(
        v[4],
        Verdict::Route {
            pool: 0,
            rule: None,
            hash: None,
            proxy: None,
            skip: 0,
            body_capped: false
        },
        "PROXY bytes on a listener without accept_proxy: not HTTP"
    );
    let p = routes(true, 16384, 262_144);
    let v = same_however_split(&p, &seeds()[4], &[]);
    assert!(
        matches!(
            v,
            Verdict::Route {
                pool: 2,
                skip: 28,
                proxy: Some(_),
                ..
            }
        ),
        "{v:?}"
    );
    let v = same_however_split(&p, &seeds()[5], &[]);
    assert!(
        matches!(
            v,
            Verdict::Route {
                pool: 5,
                proxy: Some(_),
                ..
            }
        ),
        "{v:?}"
    );
}
