//! The human-readable summary `ringlb check` prints: what the config resolved to, with every
//! default filled in. It must never be parsed by programs; its layout may change.

use super::duration::format_duration;
use super::size::format_size;
use super::{Balance, Config, Count, Pool};
use crate::route::ProxyVersion;
use std::fmt::Write;

impl Config {
    /// A multi-line summary: workers and runtime sizes, each listener with its pool, each pool
    /// with its balance (and the keys its strategy uses), timeouts, retries, queueing,
    /// connection age, slow start and backends.
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
        let max = match r.max_connections {
            0 => "from the open files limit".to_string(),
            n => n.to_string(),
        };
        let _ = writeln!(
            out,
            "runtime: io {}, ring_entries {}, buffer_size {} B, buffer_count {}, \
             max_unsent {} B, max_connections {max}, peek_memory_max {}",
            r.io,
            r.ring_entries,
            r.buffer_size,
            r.buffer_count,
            r.max_unsent,
            format_size(r.peek_memory_max)
        );
        if self.pools.iter().any(|p| !p.names.is_empty()) {
            let servers: Vec<String> = r.dns_servers.iter().map(|s| s.to_string()).collect();
            let _ = writeln!(
                out,
                "dns servers: {}",
                if servers.is_empty() {
                    "the system's (/etc/resolv.conf, /etc/hosts)".to_string()
                } else {
                    servers.join(", ")
                }
            );
        }
        if let Some(path) = &r.handover_socket {
            let _ = writeln!(out, "handover socket: {}", path.display());
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let pool = self.pools.get(l.pool).map_or("?", |p| p.name.as_str());
            let _ = writeln!(
                out,
                "listener {:?}: {} -> pool {:?} (backlog {}{})",
                l.name,
                l.bind,
                pool,
                l.backlog,
                match l.max_connections {
                    0 => String::new(),
                    n => format!(", max_connections {n}"),
                }
            );
            self.listener_routing(&mut out, i);
        }
        for p in &self.pools {
            let _ = writeln!(
                out,
                "pool {:?}: {}, connect_timeout {}, idle_timeout {}, half_close_timeout {}, \
                 retries {}, {} backend{}",
                p.name,
                p.balance,
                format_duration(p.connect_timeout),
                format_duration(p.idle_timeout),
                format_duration(p.half_close_timeout),
                p.retries,
                p.backends.len() + p.names.len(),
                if p.backends.len() + p.names.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            let _ = writeln!(out, "  {}", pool_tuning(p));
            let _ = writeln!(out, "  {}", pool_health(p));
            if let Some(m) = &p.engine_metrics {
                let _ = writeln!(out, "  {}", super::engine_metrics::describe(m));
            }
            for b in &p.backends {
                let max = match b.max_connections {
                    0 => "unlimited".to_string(),
                    n => n.to_string(),
                };
                let _ = writeln!(
                    out,
                    "  backend {}: weight {}, max_connections {}, tier {}",
                    b.addr, b.weight, max, b.tier
                );
            }
            for n in &p.names {
                let max = match n.max_connections {
                    0 => "unlimited".to_string(),
                    m => m.to_string(),
                };
                let _ = writeln!(
                    out,
                    "  backend {} (DNS name, resolved every {}): weight {}, max_connections {}, \
                     tier {}",
                    n.label(),
                    format_duration(n.refresh),
                    n.weight,
                    max,
                    n.tier
                );
            }
        }
        let _ = match &self.admin {
            None => writeln!(out, "admin: off"),
            Some(a) => writeln!(
                out,
                "admin: {} ({})",
                a.bind,
                match (&a.token, a.metrics_public) {
                    (None, _) => "no token",
                    (Some(_), false) => "token required",
                    (Some(_), true) => "token required, /metrics public",
                }
            ),
        };
        out
    }
}

impl Config {
    /// Listener `i`'s peek limits and rules, one line each (nothing for a listener that never
    /// peeks). Rules are numbered as in the file; the first that matches wins.
    fn listener_routing(&self, out: &mut String, i: usize) {
        let routes = self.listener_routes(i);
        if !routes.needs_peek() {
            return;
        }
        let s = routes.settings();
        let _ = writeln!(
            out,
            "  peek: timeout {}, peek_max {}, peek_body_max {}{} (engine wiring pending)",
            format_duration(s.timeout),
            format_size(s.max as u64),
            format_size(s.body_max as u64),
            if s.accept_proxy { ", accept_proxy" } else { "" }
        );
        let name = |p: usize| self.pools.get(p).map_or("?", |p| p.name.as_str());
        for (n, rule) in routes.rules().iter().enumerate() {
            let _ = writeln!(
                out,
                "  route {}: {rule} -> pool {:?}",
                n + 1,
                name(rule.pool)
            );
        }
        if !routes.rules().is_empty() {
            let _ = writeln!(out, "  otherwise -> pool {:?}", name(routes.default_pool()));
        }
    }
}

/// The active check (or "none") and the passive policy.
fn pool_health(p: &Pool) -> String {
    let active = match &p.health {
        None => "health check none".to_string(),
        Some(h) => format!("health check {}", h.describe()),
    };
    let passive = &p.passive;
    let passive = if passive.failures == 0 {
        "passive off".to_string()
    } else {
        format!(
            "passive {} failures, backoff {} to {}{}",
            passive.failures,
            format_duration(passive.backoff),
            format_duration(passive.backoff_max),
            if passive.early_close {
                ", early closes count"
            } else {
                ""
            }
        )
    };
    format!("{active}; {passive}")
}

/// The strategy's own keys, then queue, age and slow start, "off" where disabled.
fn pool_tuning(p: &Pool) -> String {
    let off_or = |d: std::time::Duration| {
        if d.is_zero() {
            "off".to_string()
        } else {
            format_duration(d)
        }
    };
    let mut parts = Vec::new();
    match p.balance {
        Balance::Hash => {
            parts.push(match &p.session_key {
                None => format!("hash_key {}", p.hash_key),
                Some(k) => format!("hash_key {k} (peeked; {} when absent)", p.hash_key),
            });
            parts.push(format!("hash_balance_factor {}", p.hash_balance_factor));
        }
        Balance::LeastLatency => parts.push(format!(
            "latency_decay {}",
            format_duration(p.latency_decay)
        )),
        Balance::LeastLoad => {
            let w = &p.least_load;
            parts.push(format!(
                "queue_weight {}, kv_weight {}, kv_full {}, waiting_full {}",
                w.queue_weight,
                w.kv_weight,
                w.kv_full,
                if w.waiting_full == 0 {
                    "off".to_string()
                } else {
                    w.waiting_full.to_string()
                }
            ));
        }
        _ => {}
    }
    if matches!(p.balance, Balance::LeastConnections | Balance::LeastLoad) {
        parts.push(match p.count {
            Count::Streams => "count streams".to_string(),
            Count::Generating {
                idle_after,
                idle_weight,
            } => format!(
                "count generating (idle after {}, weighs {idle_weight})",
                format_duration(idle_after)
            ),
        });
    }
    if p.queue_size == 0 {
        parts.push("queue off".to_string());
    } else {
        parts.push(format!(
            "queue_size {}, queue_timeout {}{}",
            p.queue_size,
            format_duration(p.queue_timeout),
            if p.queue_when_all_down {
                ", also when all are down"
            } else {
                ""
            }
        ));
    }
    match p.max_connection_age {
        None => parts.push("max_connection_age off".to_string()),
        Some(age) => parts.push(format!(
            "max_connection_age {} (+ up to {} jitter)",
            format_duration(age),
            format_duration(p.max_connection_age_jitter)
        )),
    }
    parts.push(format!("slow_start {}", off_or(p.slow_start)));
    if let Some(v) = p.send_proxy {
        parts.push(format!(
            "send_proxy {}",
            match v {
                ProxyVersion::V1 => "v1",
                ProxyVersion::V2 => "v2",
            }
        ));
    }
    parts.join(", ")
}
