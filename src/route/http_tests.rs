//! Unit tests of the request-head reader.

use super::{parse_head, BodyFraming, HttpHead, HttpParse};

fn head(bytes: &[u8]) -> Box<HttpHead> {
    match parse_head(bytes) {
        HttpParse::Head(h) => h,
        other => panic!("expected a head, got {other:?}"),
    }
}

#[test]
fn reads_a_post_with_a_json_body() {
    let req = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: API.Example.com:8000\r\n\
                Content-Type: application/json\r\nContent-Length: 16\r\n\
                X-Session-Id:  abc \r\n\r\n{\"model\":\"qwen\"}";
    let h = head(req);
    assert_eq!(h.method, "POST");
    assert_eq!(h.path, "/v1/chat/completions");
    assert_eq!(h.host.as_deref(), Some("api.example.com"));
    assert_eq!(h.minor_version, 1);
    assert_eq!(h.body, BodyFraming::Length(16));
    assert_eq!(h.head_len, req.len() - 16);
    assert_eq!(h.header("x-session-id"), Some("abc"));
    assert_eq!(h.header("CONTENT-TYPE"), Some("application/json"));
    assert_eq!(h.header("missing"), None);
    assert_eq!(h.header_count(), 4);
    assert!(!h.websocket);
}

#[test]
fn websocket_upgrades_need_both_headers() {
    let h = head(
        b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\
          Upgrade: WebSocket\r\nSec-WebSocket-Key: a\r\n\r\n",
    );
    assert!(h.websocket);
    assert_eq!(h.body, BodyFraming::None);
    let h = head(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    assert!(!h.websocket, "no Connection: upgrade");
    let h = head(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
    assert!(!h.websocket);
}

#[test]
fn framing_and_expect() {
    let h = head(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.body, BodyFraming::Chunked);
    assert!(h.expect_continue);
    let h = head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Unknown);
    let h = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Length(5));
    let h = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Unknown);
    let h = head(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Unknown);
    let h = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Chunked, "chunked wins (RFC 9112 6.3)");
}

#[test]
fn targets_and_hosts() {
    let h = head(b"GET http://Other.example:81/p/q?z HTTP/1.1\r\nHost: ignored\r\n\r\n");
    assert_eq!(
        (h.path.as_str(), h.host.as_deref()),
        ("/p/q", Some("other.example"))
    );
    let h = head(b"GET http://a.example HTTP/1.1\r\n\r\n");
    assert_eq!(
        (h.path.as_str(), h.host.as_deref()),
        ("/", Some("a.example"))
    );
    let h = head(b"GET /x#frag HTTP/1.0\r\nHost: [::1]:8080\r\n\r\n");
    assert_eq!((h.path.as_str(), h.host.as_deref()), ("/x", Some("::1")));
    assert_eq!(h.minor_version, 0);
    let h = head(b"OPTIONS * HTTP/1.1\r\nHost: a:b\r\n\r\n");
    assert_eq!((h.path.as_str(), h.host.as_deref()), ("*", Some("a:b")));
    let h = head(b"GET / HTTP/1.1\r\nHost: \r\n\r\n");
    assert_eq!(h.host, None);
}

#[test]
fn prefixes_need_more_and_garbage_is_not_http() {
    let req = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    for cut in 0..req.len() {
        assert_eq!(parse_head(&req[..cut]), HttpParse::NeedMore, "cut {cut}");
    }
    for bytes in [
        &[22u8, 3, 1, 0, 5][..],
        b"\x00\x01\x02",
        b"GET / HTTP/2.0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ] {
        assert_eq!(parse_head(bytes), HttpParse::NotHttp, "{bytes:?}");
    }
}

#[test]
fn many_headers_are_parsed_on_the_heap_up_to_the_limit() {
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..300 {
        req.extend(format!("x-h{i}: {i}\r\n").as_bytes());
    }
    req.extend(b"\r\n");
    assert_eq!(head(&req).header("x-h299"), Some("299"));
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..600 {
        req.extend(format!("x-h{i}: {i}\r\n").as_bytes());
    }
    req.extend(b"\r\n");
    assert_eq!(parse_head(&req), HttpParse::NotHttp);
}
