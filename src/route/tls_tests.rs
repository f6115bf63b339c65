//! Unit tests of the ClientHello reader, on hellos built here byte by byte.

use super::{parse_client_hello, ClientHello, TlsParse};

fn u16b(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

/// A ClientHello handshake message (type, u24 length, body) with these extensions.
fn hello_message(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8];
        list.extend(u16b(name.len()));
        list.extend(name.as_bytes());
        let mut data = u16b(list.len()).to_vec();
        data.extend(list);
        exts.extend([0, 0]);
        exts.extend(u16b(data.len()));
        exts.extend(data);
    }
    // An extension we skip (supported_versions) between the two we read.
    exts.extend([0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend(p.as_bytes());
        }
        let mut data = u16b(list.len()).to_vec();
        data.extend(list);
        exts.extend([0, 16]);
        exts.extend(u16b(data.len()));
        exts.extend(data);
    }
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(0); // session id
    body.extend([0, 2, 0x13, 0x01]); // one cipher suite
    body.extend([1, 0]); // null compression
    body.extend(u16b(exts.len()));
    body.extend(exts);
    let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    msg.extend(body);
    msg
}

/// `msg` cut into records of at most `per` bytes each.
fn records(msg: &[u8], per: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in msg.chunks(per) {
        out.extend([22, 3, 1]);
        out.extend(u16b(part.len()));
        out.extend(part);
    }
    out
}

fn hello(sni: Option<&str>, alpn: &[&str], len: usize) -> TlsParse {
    TlsParse::ClientHello(ClientHello {
        sni: sni.map(str::to_string),
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
        len,
    })
}

#[test]
fn reads_sni_and_alpn_from_one_record() {
    let bytes = records(
        &hello_message(Some("a.internal.example"), &["h2", "http/1.1"]),
        16384,
    );
    assert_eq!(
        parse_client_hello(&bytes, 16384),
        hello(Some("a.internal.example"), &["h2", "http/1.1"], bytes.len())
    );
    // Whatever follows the hello (early data) is not counted.
    let mut more = bytes.clone();
    more.extend([23, 3, 3, 0, 1, 0]);
    assert_eq!(
        parse_client_hello(&more, 16384),
        hello(Some("a.internal.example"), &["h2", "http/1.1"], bytes.len())
    );
}

#[test]
fn gathers_a_hello_spread_over_records() {
    let msg = hello_message(Some("spread.example"), &["h2"]);
    for per in [1, 2, 7, 50] {
        let bytes = records(&msg, per);
        assert_eq!(
            parse_client_hello(&bytes, 1 << 20),
            hello(Some("spread.example"), &["h2"], bytes.len()),
            "records of {per}"
        );
    }
}

#[test]
fn every_prefix_needs_more_and_the_cap_is_respected() {
    let bytes = records(&hello_message(Some("x.example"), &[]), 40);
    for cut in 0..bytes.len() {
        assert_eq!(
            parse_client_hello(&bytes[..cut], 1 << 20),
            TlsParse::NeedMore,
            "cut {cut}"
        );
        assert_eq!(
            parse_client_hello(&bytes, cut),
            TlsParse::NeedMore,
            "cap {cut}"
        );
    }
}

#[test]
fn without_extensions_or_names() {
    let bytes = records(&hello_message(None, &[]), 16384);
    assert_eq!(
        parse_client_hello(&bytes, 16384),
        hello(None, &[], bytes.len())
    );
}

#[test]
fn other_bytes_are_not_tls() {
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        &[22, 2][..],
        &[22, 3, 9][..],
        &[22, 3, 1, 0, 0][..],             // empty record
        &[22, 3, 1, 0x40, 0x01][..],       // record over 2^14
        &[22, 3, 1, 0, 4, 2, 0, 0, 0][..], // a ServerHello
        &[23, 3, 3, 0, 1, 0][..],
    ] {
        assert_eq!(
            parse_client_hello(bytes, 16384),
            TlsParse::NotTls,
            "{bytes:?}"
        );
    }
    // A hello whose inner lengths lie.
    let mut msg = hello_message(Some("x.example"), &["h2"]);
    let last = msg.len() - 1;
    msg[last - 3] = 200; // the ALPN list length
    assert_eq!(
        parse_client_hello(&records(&msg, 16384), 16384),
        TlsParse::NotTls
    );
    // A record of another type in the middle of the hello.
    let msg = hello_message(Some("x.example"), &[]);
    let mut bytes = records(&msg[..10], 16384);
    bytes.extend([21, 3, 3, 0, 2, 1, 0]);
    assert_eq!(parse_client_hello(&bytes, 16384), TlsParse::NotTls);
}
