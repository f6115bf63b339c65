//! Unit tests of the PROXY protocol reader and writers.

use super::{encode_v1, encode_v2, parse_proxy, ProxyHeader, ProxyParse, ProxyVersion, V2_SIG};
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn header(version: ProxyVersion, addrs: Option<(&str, &str)>, consumed: usize) -> ProxyParse {
    ProxyParse::Header {
        header: ProxyHeader {
            version,
            src: addrs.map(|(s, _)| sa(s)),
            dst: addrs.map(|(_, d)| sa(d)),
        },
        consumed,
    }
}

#[test]
fn v1_lines() {
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    assert_eq!(
        parse_proxy(line, 4096),
        header(
            ProxyVersion::V1,
            Some(("192.0.2.1:56324", "198.51.100.2:443")),
            line.len() - 5
        )
    );
    let line = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    assert_eq!(
        parse_proxy(line, 4096),
        header(
            ProxyVersion::V1,
            Some(("[2001:db8::1]:1", "[::1]:65535")),
            line.len()
        )
    );
    let line = b"PROXY UNKNOWN whatever\r\n";
    assert_eq!(
        parse_proxy(line, 4096),
        header(ProxyVersion::V1, None, line.len())
    );
    for cut in 0..line.len() {
        assert_eq!(
            parse_proxy(&line[..cut], 4096),
            ProxyParse::NeedMore,
            "cut {cut}"
        );
    }
}

#[test]
fn bad_v1_lines() {
    for bad in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n"[..],
        b"PROXY TCP4 192.0.2.1  198.51.100.2 56324 443\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
        b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY\r\n",
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01",
    ] {
        assert_eq!(parse_proxy(bad, 4096), ProxyParse::Invalid, "{bad:?}");
    }
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    assert_eq!(parse_proxy(&long, 4096), ProxyParse::Invalid);
    assert_eq!(parse_proxy(&long[..106], 4096), ProxyParse::NeedMore);
    assert_eq!(parse_proxy(&long[..107], 4096), ProxyParse::Invalid);
    assert_eq!(parse_proxy(&long[..20], 20), ProxyParse::Invalid, "the cap");
}

#[test]
fn v2_headers() {
    let mut h = V2_SIG.to_vec();
    h.extend([0x21, 0x11, 0, 12 + 7]);
    h.extend([10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0x01, 0xbb]);
    h.extend([0xea, 0, 4, 1, 2, 3, 4]); // an AWS TLV, ignored
    let total = h.len();
    h.extend(b"GET /");
    assert_eq!(
        parse_proxy(&h, 4096),
        header(
            ProxyVersion::V2,
            Some(("10.0.0.1:8080", "10.0.0.2:443")),
            total
        )
    );
    for cut in 0..total {
        assert_eq!(
            parse_proxy(&h[..cut], 4096),
            ProxyParse::NeedMore,
            "cut {cut}"
        );
    }
    assert_eq!(
        parse_proxy(&h, total - 1),
        ProxyParse::Invalid,
        "over the cap"
    );
    // LOCAL: the hop's health check; addresses are discarded.
    let mut local = V2_SIG.to_vec();
    local.extend([0x20, 0x00, 0, 0]);
    assert_eq!(
        parse_proxy(&local, 4096),
        header(ProxyVersion::V2, None, 16)
    );
    // IPv6 round trip through the writer.
    let (src, dst) = (sa("[2001:db8::7]:40000"), sa("[2001:db8::1]:8000"));
    let enc = encode_v2(src, dst);
    assert_eq!(enc.as_bytes().len(), 52);
    assert_eq!(
        parse_proxy(enc.as_bytes(), 4096),
        header(
            ProxyVersion::V2,
            Some(("[2001:db8::7]:40000", "[2001:db8::1]:8000")),
            52
        )
    );
}

#[test]
fn bad_v2_headers() {
    let base = |ver_cmd: u8, fam: u8, block: &[u8]| {
        let mut h = V2_SIG.to_vec();
        h.extend([ver_cmd, fam]);
        h.extend((block.len() as u16).to_be_bytes());
        h.extend(block);
        h
    };
    for bad in [
        base(0x11, 0x11, &[0; 12]),  // version 1
        base(0x22, 0x11, &[0; 12]),  // command 2
        base(0x21, 0x11, &[0; 11]),  // short IPv4 block
        base(0x21, 0x21, &[0; 35]),  // short IPv6 block
        base(0x21, 0x12, &[0; 12]),  // UDP
        base(0x21, 0x31, &[0; 216]), // AF_UNIX
        base(0x21, 0x11, &[0; 14]),  // 2 bytes that are no TLV
        base(0x21, 0x11, &[[0; 12].as_slice(), &[1, 0, 9, 0]].concat()), // TLV too long
    ] {
        assert_eq!(parse_proxy(&bad, 4096), ProxyParse::Invalid, "{bad:?}");
    }
}

#[test]
fn writers() {
    let v4 = encode_v1(sa("192.0.2.1:56324"), sa("198.51.100.2:443"));
    assert_eq!(
        v4.as_bytes(),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    );
    // A dual-stack listener sees IPv4 clients as mapped addresses: sent as TCP4.
    let mapped = encode_v1(sa("[::ffff:192.0.2.1]:1"), sa("198.51.100.2:2"));
    assert_eq!(
        mapped.as_bytes(),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"
    );
    let mixed = encode_v1(sa("[2001:db8::1]:1"), sa("198.51.100.2:2"));
    assert_eq!(
        mixed.as_bytes(),
        b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 1 2\r\n"
    );
    let widest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
    let long = encode_v1(sa(widest), sa(widest));
    assert_eq!(long.as_bytes().len(), 104);
    assert!(matches!(
        parse_proxy(long.as_bytes(), 4096),
        ProxyParse::Header { consumed: 104, .. }
    ));
    let v2 = encode_v2(sa("10.0.0.1:8080"), sa("[::ffff:10.0.0.2]:443"));
    assert_eq!(v2.as_bytes().len(), 28);
    assert_eq!(
        parse_proxy(v2.as_bytes(), 4096),
        header(
            ProxyVersion::V2,
            Some(("10.0.0.1:8080", "10.0.0.2:443")),
            28
        )
    );
}
