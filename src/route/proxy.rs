//! PROXY protocol v1 and v2 (haproxy.org's proxy-protocol.txt): a strict reader of the header
//! a client-side hop (an AWS NLB, another L4 balancer) puts before the client's bytes on an
//! `accept_proxy` listener, and the writer of the header ringlb puts before the client's bytes
//! to a `send_proxy` backend, so that backends see the real client address.
//!
//! The reader accepts v1 `TCP4`, `TCP6` and `UNKNOWN`, and v2 `LOCAL` and `PROXY` over
//! AF_INET / AF_INET6 stream (or AF_UNSPEC); v2 TLVs are walked to check their framing and
//! otherwise ignored, and the whole header must fit the caller's cap. It must never accept
//! a malformed header (the listener closes such a connection: whatever follows a bad header is
//! not the client's), never read past the slice or the cap, and never panic.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest v1 line, CRLF included (the spec's 107).
pub const V1_MAX: usize = 107;
/// The v2 signature.
pub const V2_SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_SIG: &[u8] = b"PROXY ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyVersion {
    V1,
    V2,
}

/// A header received from a client-side hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: ProxyVersion,
    /// The client as the previous hop saw it. Both `src` and `dst` are None for v1 `UNKNOWN`,
    /// v2 `LOCAL` (the hop's own health check) and v2 AF_UNSPEC: then the connection's own
    /// addresses stand.
    pub src: Option<SocketAddr>,
    /// The address the client connected to at the previous hop.
    pub dst: Option<SocketAddr>,
}

/// What the first bytes of a connection on an `accept_proxy` listener are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyParse {
    /// A plausible, incomplete header.
    NeedMore,
    /// Not a valid PROXY header.
    Invalid,
    /// A header of `consumed` bytes (never more than the slice or the cap): the client's own
    /// bytes start there.
    Header {
        header: ProxyHeader,
        consumed: usize,
    },
}

/// Reads the PROXY header (v1 or v2) at the start of `buf`, looking at no more than `cap`
/// bytes; a header that does not fit `cap` is invalid.
pub fn parse_proxy(buf: &[u8], cap: usize) -> ProxyParse {
    let buf = &buf[..buf.len().min(cap)];
    let n = buf.len();
    if n < V1_SIG.len() && V1_SIG.starts_with(buf) || n < V2_SIG.len() && V2_SIG.starts_with(buf) {
        return if n == cap {
            ProxyParse::Invalid
        } else {
            ProxyParse::NeedMore
        };
    }
    if buf.starts_with(V1_SIG) {
        v1(buf, cap)
    } else if buf.starts_with(&V2_SIG) {
        super::proxy_v2::parse(buf, cap)
    } else {
        ProxyParse::Invalid
    }
}

fn v1(buf: &[u8], cap: usize) -> ProxyParse {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if window.len() >= V1_MAX.min(cap) {
            ProxyParse::Invalid
        } else {
            ProxyParse::NeedMore
        };
    };
    let Some(line) = window[..lf].strip_suffix(b"\r") else {
        return ProxyParse::Invalid;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return ProxyParse::Invalid;
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let consumed = lf + 1;
    let header = |src, dst| ProxyParse::Header {
        header: ProxyHeader {
            version: ProxyVersion::V1,
            src,
            dst,
        },
        consumed,
    };
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => header(None, None),
        ["PROXY", proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *proto == "TCP6";
            match (ip(src, v6), ip(dst, v6), port(sport), port(dport)) {
                (Some(s), Some(d), Some(sp), Some(dp)) => {
                    header(Some(SocketAddr::new(s, sp)), Some(SocketAddr::new(d, dp)))
                }
                _ => ProxyParse::Invalid,
            }
        }
        _ => ProxyParse::Invalid,
    }
}

fn ip(text: &str, v6: bool) -> Option<IpAddr> {
    if v6 {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A decimal port without sign or leading zeros.
fn port(text: &str) -> Option<u16> {
    let plain = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    plain.then(|| text.parse().ok()).flatten()
}

/// A header to send, built without allocating: at most 107 bytes (v1) or 52 (v2).
#[derive(Clone, Copy)]
pub struct EncodedProxy {
    buf: [u8; V1_MAX],
    len: u8,
}

impl EncodedProxy {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for EncodedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncodedProxy({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

/// Both addresses as IPv4 when both are IPv4 (or IPv4-mapped IPv6), else both as IPv6.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (IpAddr, IpAddr) {
    let v4 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped(),
    };
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    };
    match (v4(src), v4(dst)) {
        (Some(s), Some(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
        _ => (IpAddr::V6(v6(src)), IpAddr::V6(v6(dst))),
    }
}

/// The v1 line for a TCP connection from `src` to `dst`.
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> EncodedProxy {
    let (s, d) = same_family(src, dst);
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    let mut out = EncodedProxy {
        buf: [0; V1_MAX],
        len: 0,
    };
    let mut cursor = std::io::Cursor::new(&mut out.buf[..]);
    // The longest line (two full IPv6 addresses, two 5-digit ports) is 104 bytes: it fits.
    let _ = write!(
        cursor,
        "PROXY {proto} {s} {d} {} {}\r\n",
        src.port(),
        dst.port()
    );
    out.len = cursor.position() as u8;
    out
}

/// The v2 header (command PROXY, stream, no TLV) for a TCP connection from `src` to `dst`.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> EncodedProxy {
    let mut out = EncodedProxy {
        buf: [0; V1_MAX],
        len: 0,
    };
    let mut at = 0usize;
    let mut put = |bytes: &[u8]| {
        out.buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&V2_SIG);
    put(&[0x21]); // version 2, PROXY
    match same_family(src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(&[0x11, 0, 12]);
            put(&s.octets());
            put(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V6(ip) => ip.octets(),
                IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            };
            put(&[0x21, 0, 36]);
            put(&v6(s));
            put(&v6(d));
        }
    }
    put(&src.port().to_be_bytes());
    put(&dst.port().to_be_bytes());
    out.len = at as u8;
    out
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
