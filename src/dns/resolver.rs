//! One DNS resolver (hickory) for the process: the configured `dns_servers`, or the system's
//! /etc/resolv.conf (servers, search domains, ndots), with /etc/hosts either way.
//!
//! Answers are cached for their TTL by hickory, so a name is asked of the servers at most once
//! per max(TTL, dns_refresh). It must never be used off the control plane's runtime.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

use super::DnsError;

/// Two seconds per try: a resolver on the LAN or in the cluster answers in milliseconds; a
/// longer wait only delays the "cannot resolve" log while the last set keeps serving.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Names cached at most: far above the names one config holds (each has an A and an AAAA).
const CACHE_SIZE: usize = 1024;

pub struct DnsResolver {
    inner: TokioResolver,
    servers: Vec<SocketAddr>,
}

impl DnsResolver {
    /// A resolver asking `servers` (UDP, then TCP for truncated answers), or with none the
    /// system's configuration.
    pub fn new(servers: &[SocketAddr]) -> Result<DnsResolver, DnsError> {
        let (system, mut opts) = match hickory_resolver::system_conf::read_system_conf() {
            Ok(found) => found,
            Err(e) if servers.is_empty() => return Err(DnsError::Setup(e.to_string())),
            // Explicit servers need nothing from the file; its search list is only a bonus.
            Err(_) => (ResolverConfig::new(), ResolverOpts::default()),
        };
        let config = if servers.is_empty() {
            system
        } else {
            let mut group = NameServerConfigGroup::with_capacity(servers.len() * 2);
            for &s in servers {
                group.push(NameServerConfig::new(s, Protocol::Udp));
                group.push(NameServerConfig::new(s, Protocol::Tcp));
            }
            ResolverConfig::from_parts(system.domain().cloned(), system.search().to_vec(), group)
        };
        // Both families: a backend may be reachable on either, and the table holds both.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = QUERY_TIMEOUT;
        opts.cache_size = CACHE_SIZE;
        let inner = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        Ok(DnsResolver {
            inner,
            servers: servers.to_vec(),
        })
    }

    /// The `dns_servers` it was made for (empty = the system's).
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Every address `host` resolves to, with `port`; an answer without any address is an
    /// error (the caller keeps the last set: a name that briefly has no records, or a zone
    /// being reloaded, must not drain a fleet).
    pub async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        match self.inner.lookup_ip(host).await {
            Ok(answer) => {
                let mut addrs: Vec<SocketAddr> =
                    answer.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    return Err(DnsError::NoRecords(host.to_string()));
                }
                Ok(addrs)
            }
            Err(e) if e.is_no_records_found() => Err(DnsError::NoRecords(host.to_string())),
            Err(e) => Err(DnsError::Lookup {
                name: host.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}
