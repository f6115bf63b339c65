//! The DNS keys: `[runtime] dns_servers`, `[[pool]] dns_refresh` and its per-backend form.
//!
//! Names themselves are parsed in `addr`; this module checks how often they are resolved and
//! by which servers. It must never resolve anything: a config's validity never depends on DNS.

use super::checks::Checker;
use super::error::ConfigError;
use super::raw::RawDuration;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use toml::Spanned;

/// Five seconds: a Kubernetes headless service's A records follow pod changes within seconds
/// (CoreDNS answers with TTL 5), and one small query per name every 5 s costs nothing.
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);
/// Resolving faster than this would be load on the resolver, not freshness; tests use 100s of ms.
pub const MIN_DNS_REFRESH: Duration = Duration::from_millis(50);
/// The port of a `dns_servers` entry written as a bare IP.
pub const DNS_PORT: u16 = 53;
/// More servers than this is a mistake: a resolver tries them in turn.
pub const MAX_DNS_SERVERS: usize = 16;

/// `dns_refresh` of a pool or a backend entry; `default` when absent.
pub(super) fn dns_refresh(
    check: &Checker,
    value: &Option<Spanned<RawDuration>>,
    ctx: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let d = check.duration(value, ctx, "dns_refresh", false)?;
    if d < MIN_DNS_REFRESH {
        return Err(check.err(
            &value.span(),
            format!(
                "{ctx}: `dns_refresh` must be at least {}ms, got {:?}",
                MIN_DNS_REFRESH.as_millis(),
                value.get_ref().0
            ),
        ));
    }
    Ok(d)
}

/// `[runtime] dns_servers`: `IP` (port 53) or `IP:port` entries; empty or absent = the system's
/// resolver configuration (/etc/resolv.conf).
pub(super) fn dns_servers(
    check: &Checker,
    value: &Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<SocketAddr>, ConfigError> {
    let Some(list) = value else {
        return Ok(Vec::new());
    };
    if list.get_ref().len() > MAX_DNS_SERVERS {
        return Err(check.err(
            &list.span(),
            format!(
                "runtime: `dns_servers` lists {} servers; at most {MAX_DNS_SERVERS}",
                list.get_ref().len()
            ),
        ));
    }
    let mut servers = Vec::with_capacity(list.get_ref().len());
    for entry in list.get_ref() {
        let addr = match entry.get_ref().parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, DNS_PORT),
            Err(_) => check.socket_addr(entry, "runtime", "dns_servers", "10.96.0.10:53")?,
        };
        if addr.port() == 0 {
            return Err(check.err(
                &entry.span(),
                format!("runtime: `dns_servers` entry {addr} has port 0"),
            ));
        }
        if servers.contains(&addr) {
            return Err(check.err(
                &entry.span(),
                format!("runtime: `dns_servers` lists {addr} twice"),
            ));
        }
        servers.push(addr);
    }
    Ok(servers)
}
