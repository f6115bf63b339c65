//! Backends named by DNS (`addr = "name:port"`): the names resolved on the control plane, and
//! the sets of addresses they resolved to, which every table build expands into backends.
//!
//! `resolver` asks the DNS (hickory, with `runtime.dns_servers` or the system's resolv.conf and
//! hosts); `refresh` resolves each name every `dns_refresh` and hands changed sets to the admin
//! state, the one owner of "build the table and store it" (reloads and operator overrides go
//! through it too, so none of them races another). `resolved` holds the sets.
//!
//! Nothing here may run on, or be waited on by, an engine worker; a failed or slow resolution
//! never removes a backend: the last good set stays until an answer replaces it.

mod refresh;
mod resolved;
mod resolver;

pub use refresh::{check_names, resolve_at_start, spawn, Refresher};
pub use resolved::{is_configured, Change, NameKey, Resolved};
pub use resolver::DnsResolver;

/// Why a name gave no addresses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("cannot set up the resolver: {0}")]
    Setup(String),
    #[error("no address records (A/AAAA) for {0}")]
    NoRecords(String),
    #[error("lookup of {name} failed: {reason}")]
    Lookup { name: String, reason: String },
}
