//! Literal `IP:port` addresses, and why a text is not one.
//!
//! `SocketAddr`'s own parser says only "invalid socket address syntax"; an operator needs to
//! know which part is wrong: a host name (never resolved: the config's meaning must not depend
//! on DNS at start time), a port out of range or not a number, a missing port, or an IPv6
//! address without brackets. This module must never resolve a name or accept anything
//! `SocketAddr::from_str` would not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a text is not a literal `IP:port`. `Display` completes "got "TEXT": ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AddrError {
    #[error("the address is empty")]
    Empty,
    #[error("port {0} is out of range (at most 65535)")]
    PortRange(String),
    #[error("port {0:?} is not a number")]
    PortNotNumber(String),
    #[error("the port is missing")]
    MissingPort,
    #[error("an IPv6 address needs brackets, e.g. \"[::1]:8080\"")]
    Brackets,
    #[error("{0:?} is not an IPv6 address")]
    BadIpv6(String),
    #[error("{0:?} is not an IP address; host names are not resolved")]
    HostName(String),
}

/// Parses a literal `IP:port` (IPv6 in brackets).
pub(super) fn parse_socket_addr(text: &str) -> Result<SocketAddr, AddrError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if text.trim().is_empty() {
        return Err(AddrError::Empty);
    }
    if let Some(inside) = text.strip_prefix('[') {
        let Some((host, after)) = inside.split_once(']') else {
            return Err(AddrError::BadIpv6(inside.to_string()));
        };
        let ip = host
            .parse::<Ipv6Addr>()
            .map_err(|_| AddrError::BadIpv6(host.to_string()))?;
        let port = after.strip_prefix(':').ok_or(AddrError::MissingPort)?;
        return Ok(SocketAddr::new(IpAddr::V6(ip), parse_port(port)?));
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Err(AddrError::Brackets);
    }
    if text.parse::<Ipv4Addr>().is_ok() {
        return Err(AddrError::MissingPort);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(AddrError::HostName(text.to_string()));
    };
    if host.contains(':') {
        return Err(AddrError::Brackets);
    }
    let ip = host
        .parse::<Ipv4Addr>()
        .map_err(|_| AddrError::HostName(host.to_string()))?;
    Ok(SocketAddr::new(IpAddr::V4(ip), parse_port(port)?))
}

fn parse_port(text: &str) -> Result<u16, AddrError> {
    if text.is_empty() {
        return Err(AddrError::MissingPort);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::PortNotNumber(text.to_string()));
    }
    text.parse::<u16>()
        .map_err(|_| AddrError::PortRange(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{parse_socket_addr, AddrError};

    #[test]
    fn literal_addresses_parse() {
        for ok in ["127.0.0.1:0", "0.0.0.0:65535", "[::1]:8080", "[::]:0"] {
            assert_eq!(parse_socket_addr(ok), Ok(ok.parse().unwrap()), "{ok}");
        }
    }

    #[test]
    fn each_mistake_gets_its_reason() {
        let cases = [
            ("", AddrError::Empty),
            ("127.0.0.1:70000", AddrError::PortRange("70000".into())),
            (
                "[::1]:99999999999",
                AddrError::PortRange("99999999999".into()),
            ),
            ("127.0.0.1:http", AddrError::PortNotNumber("http".into())),
            ("127.0.0.1:-1", AddrError::PortNotNumber("-1".into())),
            ("127.0.0.1", AddrError::MissingPort),
            ("127.0.0.1:", AddrError::MissingPort),
            ("[::1]", AddrError::MissingPort),
            ("::1:80", AddrError::Brackets),
            ("fe80::1%eth0:80", AddrError::Brackets),
            ("[::1:80", AddrError::BadIpv6("::1:80".into())),
            ("[1.2.3.4]:80", AddrError::BadIpv6("1.2.3.4".into())),
            ("localhost:80", AddrError::HostName("localhost".into())),
            ("localhost", AddrError::HostName("localhost".into())),
            ("1.2.3:80", AddrError::HostName("1.2.3".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_socket_addr(text), Err(want), "{text:?}");
        }
        assert_eq!(
            AddrError::PortRange("70000".into()).to_string(),
            "port 70000 is out of range (at most 65535)"
        );
    }
}
