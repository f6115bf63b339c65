//! The binary PROXY protocol v2 header: its 16-byte fixed part, the address block of its
//! family, and the TLVs after it (walked, checked, ignored).
//!
//! Kept apart from the v1 text reader in `proxy` because the two share nothing but their
//! result. It must never read a length it has not checked against the slice, and never accept
//! a header longer than the caller's cap.

use super::proxy::{ProxyHeader, ProxyParse, ProxyVersion, V2_SIG};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const FIXED: usize = 16;
const CMD_LOCAL: u8 = 0x0;
const CMD_PROXY: u8 = 0x1;

/// `buf` starts with the v2 signature and holds at most `cap` bytes.
pub(super) fn parse(buf: &[u8], cap: usize) -> ProxyParse {
    debug_assert!(buf.starts_with(&V2_SIG));
    if buf.len() < FIXED {
        return if buf.len() >= cap {
            ProxyParse::Invalid
        } else {
            ProxyParse::NeedMore
        };
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = FIXED + len;
    if ver_cmd >> 4 != 2 || total > cap {
        return ProxyParse::Invalid;
    }
    let command = ver_cmd & 0x0f;
    if command != CMD_LOCAL && command != CMD_PROXY {
        return ProxyParse::Invalid;
    }
    if buf.len() < total {
        return ProxyParse::NeedMore;
    }
    let block = &buf[FIXED..total];
    let header = |src, dst| ProxyParse::Header {
        header: ProxyHeader {
            version: ProxyVersion::V2,
            src,
            dst,
        },
        consumed: total,
    };
    if command == CMD_LOCAL {
        // "The receiver must accept this connection as valid and must use the real
        // connection endpoints and discard the protocol block including the family."
        return header(None, None);
    }
    let (addrs, rest) = match family {
        // AF_UNSPEC, UNSPEC: no address to use.
        0x00 => (None, block),
        // AF_INET, STREAM: 4 + 4 + 2 + 2.
        0x11 if block.len() >= 12 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            let src = SocketAddr::new(ip(0), port(block, 8));
            let dst = SocketAddr::new(ip(4), port(block, 10));
            (Some((src, dst)), &block[12..])
        }
        // AF_INET6, STREAM: 16 + 16 + 2 + 2.
        0x21 if block.len() >= 36 => {
            let ip = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&block[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let src = SocketAddr::new(ip(0), port(block, 32));
            let dst = SocketAddr::new(ip(16), port(block, 34));
            (Some((src, dst)), &block[36..])
        }
        // A short address block, UDP, AF_UNIX, or an unknown family: not a TCP client.
        _ => return ProxyParse::Invalid,
    };
    if !tlvs_well_formed(rest) {
        return ProxyParse::Invalid;
    }
    match addrs {
        Some((src, dst)) => header(Some(src), Some(dst)),
        None => header(None, None),
    }
}

fn port(block: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([block[at], block[at + 1]])
}

/// Whether `rest` is a sequence of whole TLVs (type: 1 byte, length: 2, value).
fn tlvs_well_formed(mut rest: &[u8]) -> bool {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return false;
        }
        let len = 3 + usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
    true
}
