//! The addresses a config asks ringlb to bind, with where the file says so.
//!
//! A config can be valid and still name an address `ringlb run` cannot open: a port another
//! process holds, one below 1024 without the capability, an IP this host does not have.
//! `ringlb check` tries each bind (see `ringlb::check`) and reports a failure here, at the
//! `bind` value, in the same `file:line:column: message` form as every other config error.

use std::net::SocketAddr;

use super::error::{ConfigError, Locator};
use super::raw::RawConfig;
use super::Config;
use toml::Spanned;

/// One address to bind: a listener's or the admin API's.
#[derive(Clone, Debug)]
pub struct BindSite {
    /// Whose address it is, as messages name it: `listener "api"` or `admin`.
    pub what: String,
    pub addr: SocketAddr,
    origin: String,
    /// 1-based line and column of the `bind` value.
    line: usize,
    column: usize,
}

impl BindSite {
    /// The error to report when `addr` cannot be bound, for `reason` ("permission denied").
    pub fn error(&self, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            line: self.line,
            column: self.column,
            message: format!("{}: cannot bind {}: {reason}", self.what, self.addr),
        }
    }
}

/// The bind sites of `config`, validated from `raw` (same order of listeners), located by
/// `loc`.
pub(super) fn sites(raw: &RawConfig, config: &Config, loc: &Locator) -> Vec<BindSite> {
    let site = |what: String, addr: SocketAddr, bind: &Option<Spanned<String>>| {
        let (line, column) = loc.position(bind.as_ref().map_or(0, |b| b.span().start));
        BindSite {
            what,
            addr,
            origin: loc.origin().to_string(),
            line,
            column,
        }
    };
    let mut sites: Vec<BindSite> = config
        .listeners
        .iter()
        .zip(&raw.listener)
        .map(|(l, r)| site(format!("listener {:?}", l.name), l.bind, &r.get_ref().bind))
        .collect();
    if let (Some(admin), Some(r)) = (&config.admin, &raw.admin) {
        sites.push(site("admin".into(), admin.bind, &r.get_ref().bind));
    }
    sites
}
