//! The addresses each DNS name of the config resolved to, last good answer per name, and how
//! they become backends of a config the table is built from.
//!
//! Plain data: no I/O, no clock. It must never hold a set for a name the config in force no
//! longer has (a reload prunes them), or a build would bring back a backend it removed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use crate::config::Config;

/// (pool name, the entry's `host:port`).
pub type NameKey = (String, String);

/// The last good answer of each name, sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    sets: BTreeMap<NameKey, Vec<SocketAddr>>,
}

/// What one new answer changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<SocketAddr>,
    pub removed: Vec<SocketAddr>,
}

impl fmt::Display for Change {
    /// `+10.0.0.5:8000 -10.0.0.3:8000`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .added
            .iter()
            .map(|a| format!("+{a}"))
            .chain(self.removed.iter().map(|a| format!("-{a}")))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

impl Resolved {
    /// The set of `key`; empty if it never resolved.
    pub fn get(&self, key: &NameKey) -> &[SocketAddr] {
        self.sets.get(key).map_or(&[], Vec::as_slice)
    }

    /// Records a good answer; the change, or None if the set is the same.
    pub fn set(&mut self, key: NameKey, mut addrs: Vec<SocketAddr>) -> Option<Change> {
        addrs.sort();
        addrs.dedup();
        let old = self.get(&key);
        let change = Change {
            added: addrs.iter().filter(|a| !old.contains(a)).copied().collect(),
            removed: old.iter().filter(|a| !addrs.contains(a)).copied().collect(),
        };
        if change.added.is_empty() && change.removed.is_empty() && self.sets.contains_key(&key) {
            return None;
        }
        self.sets.insert(key, addrs);
        Some(change)
    }

    /// Forgets the names `config` does not have.
    pub fn retain_configured(&mut self, config: &Config) {
        self.sets.retain(|key, _| is_configured(config, key));
    }

    /// `config` with every resolved address of its names added to its pool as a backend with
    /// the entry's settings. An address already in the pool (a literal, or an earlier name)
    /// stays the earlier one: one backend per (pool, address).
    pub fn expand(&self, config: &Config) -> Config {
        let mut out = config.clone();
        for pool in &mut out.pools {
            for n in &pool.names {
                let key = (pool.name.clone(), n.label());
                for addr in self.get(&key) {
                    if !pool.backends.iter().any(|b| b.addr == *addr) {
                        pool.backends.push(n.backend(addr.ip()));
                    }
                }
            }
        }
        out
    }

    /// The name (`host:port`) backend `addr` of `pool` came from; None for a literal one.
    pub fn origin(&self, config: &Config, pool: &str, addr: SocketAddr) -> Option<String> {
        let p = config.pools.iter().find(|p| p.name == pool)?;
        if p.backends.iter().any(|b| b.addr == addr) {
            return None;
        }
        p.names
            .iter()
            .map(|n| n.label())
            .find(|label| self.get(&(pool.to_owned(), label.clone())).contains(&addr))
    }
}

/// Whether `config` has the name `key`.
pub fn is_configured(config: &Config, key: &NameKey) -> bool {
    config
        .pools
        .iter()
        .any(|p| p.name == key.0 && p.names.iter().any(|n| n.label() == key.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse(
            r#"
[[listener]]
name = "l"
bind = "127.0.0.1:0"
pool = "p"
[[pool]]
name = "p"
[[pool.backend]]
addr = "10.0.0.1:80"
[[pool.backend]]
addr = "gpu.svc:80"
weight = 3
tier = 1
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn key() -> NameKey {
        ("p".into(), "gpu.svc:80".into())
    }

    #[test]
    fn changes_are_what_was_added_and_removed() {
        let mut r = Resolved::default();
        let first = r
            .set(key(), vec![a("10.0.0.3:80"), a("10.0.0.2:80")])
            .unwrap();
        assert_eq!(first.to_string(), "+10.0.0.2:80 +10.0.0.3:80");
        assert_eq!(r.set(key(), vec![a("10.0.0.3:80"), a("10.0.0.2:80")]), None);
        let next = r
            .set(key(), vec![a("10.0.0.2:80"), a("10.0.0.5:80")])
            .unwrap();
        assert_eq!(next.to_string(), "+10.0.0.5:80 -10.0.0.3:80");
    }

    #[test]
    fn expands_with_the_entry_settings_and_no_duplicates() {
        let config = config();
        let mut r = Resolved::default();
        r.set(key(), vec![a("10.0.0.1:80"), a("10.0.0.7:80")]);
        let expanded = r.expand(&config);
        let b = &expanded.pools[0].backends;
        assert_eq!(b.len(), 2, "10.0.0.1:80 is the literal backend already");
        assert_eq!(
            (b[1].addr, b[1].weight, b[1].tier),
            (a("10.0.0.7:80"), 3, 1)
        );
        assert_eq!(b[0].weight, 1);
        assert_eq!(
            r.origin(&config, "p", a("10.0.0.7:80")).as_deref(),
            Some("gpu.svc:80")
        );
        assert_eq!(r.origin(&config, "p", a("10.0.0.1:80")), None);
    }

    #[test]
    fn names_the_config_dropped_are_forgotten() {
        let mut r = Resolved::default();
        r.set(key(), vec![a("10.0.0.7:80")]);
        r.set(("p".into(), "old.svc:80".into()), vec![a("10.0.0.8:80")]);
        r.retain_configured(&config());
        assert_eq!(
            r.get(&("p".into(), "old.svc:80".into())),
            &[] as &[SocketAddr]
        );
        assert_eq!(r.get(&key()), &[a("10.0.0.7:80")]);
    }
}
