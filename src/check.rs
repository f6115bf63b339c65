//! `ringlb check`: the config file, then every address it names, bound once and released.
//!
//! A config that validates can still name a bind `ringlb run` cannot open (a port in use, a
//! port below 1024 without the capability, an IP this host lacks). Each failure is a config
//! error at the `bind` value, exit 2 like any other. An address held by a SO_REUSEPORT socket
//! of this user (a running ringlb, which `check` is the dry run of a reload for) is not an
//! error, only a warning: `run` would refuse it, a reload of that process would not.
//!
//! With the binds it also says which I/O driver `run` would use on this host and why
//! (`runtime.io`, the `RINGLB_IO` override, or for `auto` a probe of io_uring), and what each
//! backend DNS name resolves to now.

use std::path::Path;

use crate::config::{self, Config, ConfigError};
use crate::engine::{bind_reason, choose_io, try_bind, BindCheck, IoChoice};

/// A config that loaded and whose every bind can be opened.
#[derive(Debug)]
pub struct Checked {
    pub config: Config,
    /// One line each, for the operator (without a "warning: " prefix).
    pub warnings: Vec<String>,
    /// The I/O driver `run` would use here, and why; or why `run` could not choose one (a
    /// `RINGLB_IO` value that means nothing). None with the binds not checked: a config
    /// meant for another host.
    pub io: Option<Result<IoChoice, String>>,
    /// One line per backend DNS name: what it resolves to now, or why not (empty with the
    /// binds not checked, or without names).
    pub dns: Vec<String>,
}

impl Checked {
    /// The `io:` line of the summary.
    pub fn io_line(&self) -> String {
        match &self.io {
            Some(Ok(choice)) => format!("io: {choice}"),
            Some(Err(why)) => format!("io: none, `ringlb run` would refuse to start: {why}"),
            None => format!(
                "io: runtime.io = {:?} (not probed: --no-bind)",
                self.config.runtime.io.as_str()
            ),
        }
    }
}

/// Loads the config at `path` and, with `binds`, tries every bind it names.
pub fn check(path: &Path, binds: bool) -> Result<Checked, ConfigError> {
    let (config, sites) = config::load_with_binds(path)?;
    let mut warnings = Vec::new();
    for site in sites.iter().filter(|_| binds) {
        match try_bind(site.addr) {
            Ok(BindCheck::Free) => {}
            Ok(BindCheck::Shared) => warnings.push(format!(
                "{}: {} is held by a SO_REUSEPORT socket of this user (a running ringlb?): \
                 `ringlb run` would refuse it, a reload of that process would not",
                site.what, site.addr
            )),
            Err(e) => return Err(site.error(&bind_reason(site.addr, &e))),
        }
    }
    let io = binds.then(|| {
        choose_io(&config.runtime).map_err(|e| {
            warnings.push(e.to_string());
            e.to_string()
        })
    });
    // Resolved like the binds are tried: on this host, now. A failure is not an error (DNS
    // may blink; `run` starts without that name's addresses and retries).
    let dns = if binds {
        crate::dns::check_names(&config)
    } else {
        Vec::new()
    };
    Ok(Checked {
        config,
        warnings,
        io,
        dns,
    })
}
