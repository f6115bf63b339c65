//! Literal `IP:port` addresses, backend addresses that may be `name:port`, and why a text is
//! neither.
//!
//! `SocketAddr`'s own parser says only "invalid socket address syntax"; an operator needs to
//! know which part is wrong: a host name where only an IP will do (listeners, admin), a port
//! out of range or not a number, a missing port, or an IPv6 address without brackets. A
//! backend's `addr` may also be a DNS name (`dns` resolves it, on the control plane). This
//! module must never resolve a name, and [`parse_socket_addr`] must never accept anything
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
    #[error("{0:?} is not a valid DNS name: {1}")]
    BadName(String, &'static str),
}

/// A backend's address as written: a literal, or a DNS name resolved at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BackendAddr {
    Literal(SocketAddr),
    /// Lowercased, without a trailing dot; port nonzero is the caller's check.
    Name {
        host: String,
        port: u16,
    },
}

/// Longest name DNS can carry (RFC 1035 2.3.4, in text form without the final dot).
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Parses a backend `addr`: `IP:port`, `[IPv6]:port` or `name:port`. A text that would be a
/// literal but is malformed keeps the literal's reason (a name that looks like an IPv4
/// address with a digit missing is not taken for a host name).
pub(super) fn parse_backend_addr(text: &str) -> Result<BackendAddr, AddrError> {
    match parse_socket_addr(text) {
        Ok(addr) => Ok(BackendAddr::Literal(addr)),
        Err(AddrError::HostName(_)) => {
            let Some((host, port)) = text.rsplit_once(':') else {
                return Err(AddrError::MissingPort);
            };
            let port = parse_port(port)?;
            let host = check_name(host)?;
            Ok(BackendAddr::Name { host, port })
        }
        Err(other) => Err(other),
    }
}

/// RFC 1123 host name rules (letters, digits, hyphens, and underscores, which some internal
/// zones use), checked so that a typo is a config error rather than a name that never resolves.
fn check_name(host: &str) -> Result<String, AddrError> {
    let bad = |why| Err(AddrError::BadName(host.to_string(), why));
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > MAX_LABEL_LEN {
            return bad("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("only letters, digits, '-' and '_' may appear between dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    // The last label of a name is never all digits (RFC 3696 2): "10.0.0:80" is a mistyped
    // address, not a name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("it looks like an IPv4 address, but is not one");
    }
    Ok(name.to_ascii_lowercase())
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
    use super::{parse_backend_addr, parse_socket_addr, AddrError, BackendAddr};

    #[test]
    fn backend_addr_literals_stay_literals() {
        for ok in ["10.0.0.5:8000", "[::1]:8080", "[fd00::5]:8000"] {
            assert_eq!(
                parse_backend_addr(ok),
                Ok(BackendAddr::Literal(ok.parse().unwrap())),
                "{ok}"
            );
        }
    }

    #[test]
    fn backend_addr_names_parse() {
        let name = |host: &str, port| BackendAddr::Name {
            host: host.into(),
            port,
        };
        let cases = [
            (
                "vllm.gpu.svc.cluster.local:8000",
                name("vllm.gpu.svc.cluster.local", 8000),
            ),
            ("localhost:80", name("localhost", 80)),
            (
                "API.Provider.example.:443",
                name("api.provider.example", 443),
            ),
            ("gpu-1_a.internal:9000", name("gpu-1_a.internal", 9000)),
            ("3com.example:1", name("3com.example", 1)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_backend_addr(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn backend_addr_mistakes_get_their_reason() {
        let bad = |text: &str| match parse_backend_addr(text) {
            Err(AddrError::BadName(_, why)) => why,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(bad("gpu..svc:80").contains("empty label"));
        assert!(bad(".gpu:80").contains("empty label"));
        assert!(bad("gpu svc:80").contains("only letters"));
        assert!(bad("gpu/x:80").contains("only letters"));
        assert!(bad("-gpu.svc:80").contains("starts or ends"));
        assert!(bad("1.2.3:80").contains("IPv4"));
        assert!(bad(&format!("{}.x:80", "a".repeat(64))).contains("63"));
        assert!(bad(&format!("{}:80", ["abcdefghi"; 30].join("."))).contains("253"));
        assert_eq!(parse_backend_addr("gpu.svc"), Err(AddrError::MissingPort));
        assert_eq!(parse_backend_addr("gpu.svc:"), Err(AddrError::MissingPort));
        assert_eq!(
            parse_backend_addr("gpu.svc:http"),
            Err(AddrError::PortNotNumber("http".into()))
        );
        assert_eq!(
            parse_backend_addr("gpu.svc:70000"),
            Err(AddrError::PortRange("70000".into()))
        );
        assert_eq!(parse_backend_addr("::1:80"), Err(AddrError::Brackets));
        assert_eq!(parse_backend_addr("10.0.0.1"), Err(AddrError::MissingPort));
    }

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
