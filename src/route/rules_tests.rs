//! Unit tests of matchers, rules and the first-match decision.

use super::{Decision, PeekSettings, Routes, Rule, SessionKey};
use crate::route::glob::Glob;
use crate::route::http::{parse_head, HttpHead, HttpParse};
use crate::route::matcher::{Matcher, Seen, Tri};
use crate::route::tls::ClientHello;

fn globs(p: &[&str]) -> Vec<Glob> {
    p.iter().map(|g| Glob::new(g).unwrap()).collect()
}

fn head(bytes: &[u8]) -> Box<HttpHead> {
    match parse_head(bytes) {
        HttpParse::Head(h) => h,
        other => panic!("{other:?}"),
    }
}

fn rule(pool: usize, matchers: Vec<Matcher>) -> Rule {
    Rule { pool, matchers }
}

#[test]
fn matchers_against_what_was_seen() {
    let h = head(
        b"POST /v1/embeddings?x HTTP/1.1\r\nHost: Api.Example:80\r\nX-Tier: batch\r\n\
          X-Tier: gold\r\n\r\n",
    );
    let http = Seen::Http(&h, Some(Some("qwen-7b")));
    let tls_hello = ClientHello {
        sni: Some("A.Internal.Example".into()),
        alpn: vec!["h2".into(), "http/1.1".into()],
        len: 0,
    };
    let tls = Seen::Tls(&tls_hello);
    let host = Matcher::Host(vec![Glob::caseless("*.example").unwrap()]);
    let sni = Matcher::Sni(vec![Glob::caseless("*.internal.example").unwrap()]);
    let cases: Vec<(Matcher, Tri, Tri)> = vec![
        (Matcher::Method(globs(&["GET", "POST"])), Tri::Yes, Tri::No),
        (Matcher::Method(globs(&["post"])), Tri::No, Tri::No),
        (Matcher::Path(globs(&["/v1/embeddings"])), Tri::Yes, Tri::No),
        (Matcher::Path(globs(&["/v1/*"])), Tri::Yes, Tri::No),
        (
            Matcher::PathPrefix(vec!["/v1/emb".into()]),
            Tri::Yes,
            Tri::No,
        ),
        (Matcher::PathPrefix(vec!["/v2".into()]), Tri::No, Tri::No),
        (host, Tri::Yes, Tri::No),
        (
            Matcher::Header {
                name: "x-tier".into(),
                value: Glob::new("gold").unwrap(),
            },
            Tri::Yes,
            Tri::No,
        ),
        (Matcher::WebSocket(false), Tri::Yes, Tri::No),
        (Matcher::WebSocket(true), Tri::No, Tri::No),
        (Matcher::Model(globs(&["qwen-*"])), Tri::Yes, Tri::No),
        (Matcher::Model(globs(&["llama*"])), Tri::No, Tri::No),
        (sni, Tri::No, Tri::Yes),
        (Matcher::Alpn(globs(&["h2"])), Tri::No, Tri::Yes),
        (Matcher::Alpn(globs(&["h3"])), Tri::No, Tri::No),
    ];
    for (m, on_http, on_tls) in cases {
        assert_eq!(m.eval(&http), on_http, "{m} on HTTP");
        assert_eq!(m.eval(&tls), on_tls, "{m} on TLS");
        assert_eq!(m.eval(&Seen::Other), Tri::No, "{m}");
        assert_eq!(m.eval(&Seen::Unknown), Tri::Unknown, "{m}");
    }
    let pending = Seen::Http(&h, None);
    assert_eq!(Matcher::Model(globs(&["*"])).eval(&pending), Tri::Unknown);
    assert_eq!(
        Matcher::Model(globs(&["*"])).eval(&Seen::Http(&h, Some(None))),
        Tri::No
    );
}

#[test]
fn first_match_wins_and_undecided_rules_wait() {
    let h = head(b"POST /v1/chat HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
    let routes = Routes::new(
        9,
        vec![
            rule(1, vec![Matcher::PathPrefix(vec!["/v1/embeddings".into()])]),
            rule(2, vec![Matcher::Model(globs(&["llama*"]))]),
            rule(3, vec![Matcher::PathPrefix(vec!["/v1".into()])]),
        ],
        PeekSettings::default(),
        &[],
    );
    let decide = |model, finals| routes.decide(&Seen::Http(&h, model), finals);
    assert_eq!(decide(None, false), Decision::Wait);
    assert_eq!(
        decide(None, true),
        Decision::Pool {
            pool: 3,
            rule: Some(2)
        }
    );
    assert_eq!(
        decide(Some(Some("llama-70b")), false),
        Decision::Pool {
            pool: 2,
            rule: Some(1)
        }
    );
    assert_eq!(
        decide(Some(None), false),
        Decision::Pool {
            pool: 3,
            rule: Some(2)
        }
    );
    assert_eq!(
        routes.decide(&Seen::Other, false),
        Decision::Pool {
            pool: 9,
            rule: None
        }
    );
    assert!(routes.needs_peek());
    assert_eq!(routes.peek_bytes_max(), 16384 + 262144);
}

#[test]
fn needs_peek_only_with_something_to_decide() {
    assert!(!Routes::passthrough(0).needs_peek());
    assert_eq!(Routes::passthrough(0).peek_bytes_max(), 16384);
    let proxy = PeekSettings {
        accept_proxy: true,
        ..PeekSettings::default()
    };
    assert!(Routes::new(0, vec![], proxy, &[]).needs_peek());
    let keys = [None, Some(SessionKey::Header("x-session-id".into()))];
    assert!(!Routes::new(0, vec![], PeekSettings::default(), &keys).needs_peek());
    let r = Routes::new(1, vec![], PeekSettings::default(), &keys);
    assert!(r.needs_peek());
    assert_eq!(
        r.session_keys(),
        &[(1, SessionKey::Header("x-session-id".into()))]
    );
    let moved = r.with_pools(|p| p + 10);
    assert_eq!(moved.default_pool(), 11);
    assert_eq!(moved.session_keys()[0].0, 11);
}

#[test]
fn shadowing() {
    let prefix = |p: &str| Matcher::PathPrefix(vec![p.into()]);
    let all = rule(0, vec![prefix("/")]);
    let ws = rule(1, vec![Matcher::WebSocket(true), prefix("/v1/realtime")]);
    let sni = rule(2, vec![Matcher::Sni(globs(&["a"]))]);
    assert!(
        ws.shadowed_by(&all),
        "an HTTP catch-all shadows every HTTP rule"
    );
    assert!(!sni.shadowed_by(&all), "but not a TLS rule");
    assert!(
        ws.shadowed_by(&rule(5, vec![Matcher::WebSocket(true)])),
        "a subset of matchers"
    );
    assert!(!rule(1, vec![Matcher::WebSocket(true)]).shadowed_by(&ws));
    assert!(sni.shadowed_by(&sni.clone()), "a duplicate");
    assert_eq!(ws.kinds(), (false, true));
    assert_eq!(
        ws.to_string(),
        "websocket = true, path_prefix = \"/v1/realtime\""
    );
    let h = Matcher::Header {
        name: "x-tier".into(),
        value: Glob::new("batch").unwrap(),
    };
    assert_eq!(
        h.to_string(),
        "header = { name = \"x-tier\", value = \"batch\" }"
    );
    assert_eq!(
        Matcher::Sni(globs(&["a", "b*"])).to_string(),
        "sni = [\"a\", \"b*\"]"
    );
}
