//! The human-readable summary `ringlb check` prints: what the config resolved to, with every
//! default filled in. It must never be parsed by programs; its layout may change.

use super::duration::format_duration;
use super::Config;
use std::fmt::Write;

impl Config {
    /// A multi-line summary: workers and runtime sizes, each listener with its pool, each pool
    /// with its balance, timeouts, retries and backends.
    pub fn summary(&self) -> String {
        let r = &self.runtime;
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "workers: {}{}",
            r.workers,
            if r.pin_workers {
                " (pinned to CPUs)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "runtime: ring_entries {}, buffer_size {} B, buffer_count {}, max_unsent {} B",
            r.ring_entries, r.buffer_size, r.buffer_count, r.max_unsent
        );
        for l in &self.listeners {
            let pool = self.pools.get(l.pool).map_or("?", |p| p.name.as_str());
            let _ = writeln!(
                out,
                "listener {:?}: {} -> pool {:?} (backlog {})",
                l.name, l.bind, pool, l.backlog
            );
        }
        for p in &self.pools {
            let _ = writeln!(
                out,
                "pool {:?}: {}, connect_timeout {}, idle_timeout {}, retries {}, {} backend{}",
                p.name,
                p.balance,
                format_duration(p.connect_timeout),
                format_duration(p.idle_timeout),
                p.retries,
                p.backends.len(),
                if p.backends.len() == 1 { "" } else { "s" }
            );
            for b in &p.backends {
                let max = match b.max_connections {
                    0 => "unlimited".to_string(),
                    n => n.to_string(),
                };
                let _ = writeln!(
                    out,
                    "  backend {}: weight {}, max_connections {}",
                    b.addr, b.weight, max
                );
            }
        }
        out
    }
}
