//! How a reloaded config is laid over the running one: every pool keeps the index it had (the
//! engine's connections, queues and counters refer to pools by index), a removed pool stays in
//! place with no backend (its live streams go on; nothing new reaches it), new pools come
//! after; settings that cannot change in a running process keep their old values and are
//! named, so the operator learns they need a restart. Pure functions: no I/O, no clock.

use crate::config::Config;
use std::sync::Arc;

/// The config to run after a reload, and what of the new file could not be applied.
#[derive(Debug)]
pub struct Layout {
    pub config: Config,
    /// Settings that kept their old value ("runtime.workers", "listener api: bind", ...).
    pub needs_restart: Vec<String>,
    /// Indexes (in `config.listeners`) of listeners the file adds: to be bound.
    pub added: Vec<usize>,
    /// Indexes of listeners the file no longer has: to be closed (they stay in place, like
    /// removed pools, so indexes never move).
    pub removed: Vec<usize>,
    /// Listeners whose `max_connections` changed (applies live): (index, new limit).
    pub limits: Vec<(usize, u32)>,
}

/// `new` (a validated file) over `old` (the config running, itself laid out this way);
/// `closed[i]` says listener `i` of `old` was removed by an earlier reload.
pub fn lay_out(old: &Config, new: &Config, closed: &[bool]) -> Layout {
    let mut needs_restart = runtime_changes(old, new);
    let mut pools = Vec::with_capacity(old.pools.len() + new.pools.len());
    for p in &old.pools {
        match new.pools.iter().find(|n| n.name == p.name) {
            Some(n) => pools.push(n.clone()),
            None => {
                let mut gone = p.clone();
                gone.backends.clear();
                gone.names.clear();
                pools.push(gone);
            }
        }
    }
    for n in &new.pools {
        if !pools.iter().any(|p| p.name == n.name) {
            pools.push(n.clone());
        }
    }
    let slot = |new_index: usize| {
        let name = &new.pools[new_index].name;
        pools.iter().position(|p| &p.name == name)
    };
    // Each worker bound its own sockets at start: a listener that stays keeps them; one the
    // file drops is closed in place; one it adds is bound and appended. One whose `bind` or
    // `backlog` changed is both: its new sockets are bound (before anything changes, like an
    // added one) and its old ones close, taking their backlog; its streams go on. Its pool
    // follows the file, by listener name.
    let is_open = |i: usize| !closed.get(i).copied().unwrap_or(false);
    let mut listeners = old.listeners.clone();
    let (mut added, mut removed, mut limits) = (Vec::new(), Vec::new(), Vec::new());
    let mut moved: Vec<String> = Vec::new();
    for (i, l) in listeners
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| is_open(*i))
    {
        match new.listeners.iter().find(|n| n.name == l.name) {
            Some(n) if n.bind != l.bind || n.backlog != l.backlog => {
                removed.push(i);
                moved.push(l.name.clone());
            }
            Some(n) => {
                if let Some(s) = slot(n.pool) {
                    l.pool = s;
                }
                if n.max_connections != l.max_connections {
                    l.max_connections = n.max_connections;
                    limits.push((i, n.max_connections));
                }
            }
            None => removed.push(i),
        }
    }
    for n in &new.listeners {
        let stays = old
            .listeners
            .iter()
            .enumerate()
            .any(|(i, l)| is_open(i) && l.name == n.name && !moved.contains(&l.name));
        if !stays {
            let mut l = n.clone();
            l.pool = slot(n.pool).unwrap_or(0);
            added.push(listeners.len());
            listeners.push(l);
        }
    }
    // Each listener's routing table follows the file like its pool, its pool indexes moved
    // to the slots above; a removed listener keeps the table it had.
    let routes = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let in_new = new.listeners.iter().position(|n| n.name == l.name);
            match in_new {
                Some(n) if is_open(i) || i >= old.listeners.len() => {
                    let remapped = new.listener_routes(n).with_pools(|p| slot(p).unwrap_or(p));
                    Arc::new(remapped)
                }
                _ => old.listener_routes(i),
            }
        })
        .collect();
    let admin_same = match (&old.admin, &new.admin) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.bind == b.bind && a.token == b.token && a.metrics_public == b.metrics_public
        }
        _ => false,
    };
    if !admin_same {
        needs_restart.push("[admin]".into());
    }
    let mut runtime = old.runtime.clone();
    // These apply live.
    runtime.access_log = new.runtime.access_log;
    runtime.access_log_interval = new.runtime.access_log_interval;
    runtime.shutdown_timeout = new.runtime.shutdown_timeout;
    // A budget checked when a connection starts to peek: it can follow the file.
    runtime.peek_memory_max = new.runtime.peek_memory_max;
    Layout {
        config: Config {
            runtime,
            listeners,
            pools,
            admin: old.admin.clone(),
            routes,
            digest: new.digest.clone(),
        },
        needs_restart,
        added,
        removed,
        limits,
    }
}

fn runtime_changes(old: &Config, new: &Config) -> Vec<String> {
    let (o, n) = (&old.runtime, &new.runtime);
    let fixed = [
        ("workers", o.workers as u64, n.workers as u64),
        (
            "pin_workers",
            u64::from(o.pin_workers),
            u64::from(n.pin_workers),
        ),
        (
            "ring_entries",
            u64::from(o.ring_entries),
            u64::from(n.ring_entries),
        ),
        (
            "buffer_size",
            u64::from(o.buffer_size),
            u64::from(n.buffer_size),
        ),
        (
            "buffer_count",
            u64::from(o.buffer_count),
            u64::from(n.buffer_count),
        ),
        (
            "max_unsent",
            u64::from(o.max_unsent),
            u64::from(n.max_unsent),
        ),
        (
            "max_connections",
            u64::from(o.max_connections),
            u64::from(n.max_connections),
        ),
    ];
    let mut changed: Vec<String> = fixed
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(k, _, _)| format!("runtime.{k}"))
        .collect();
    // Every worker runs on the driver chosen at start (see `engine::io_choice`).
    if o.io != n.io {
        changed.push("runtime.io".into());
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pools: &[(&str, &[&str])], listeners: &[(&str, &str)], workers: usize) -> Config {
        let mut t = format!("[runtime]\nworkers = {workers}\n");
        for (name, pool) in listeners {
            t += &format!(
                "[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.1:0\"\npool = \"{pool}\"\n"
            );
        }
        for (name, backends) in pools {
            t += &format!("[[pool]]\nname = \"{name}\"\n");
            for b in *backends {
                t += &format!("[[pool.backend]]\naddr = \"{b}\"\n");
            }
        }
        crate::config::parse(&t, "t.toml").unwrap()
    }

    #[test]
    fn pools_keep_their_index_removed_ones_stay_empty_new_ones_come_after() {
        let old = cfg(
            &[("a", &["127.0.0.1:1"]), ("b", &["127.0.0.1:2"])],
            &[("x", "b")],
            2,
        );
        let new = cfg(
            &[("c", &["127.0.0.1:3"]), ("b", &["127.0.0.1:4"])],
            &[("x", "c")],
            2,
        );
        let l = lay_out(&old, &new, &[]);
        let names: Vec<&str> = l.config.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(l.config.pools[0].backends.is_empty(), "a was removed");
        assert_eq!(
            l.config.pools[1].backends[0].addr.port(),
            4,
            "b as the new file has it"
        );
        assert_eq!(
            l.config.listeners[0].pool, 2,
            "x now sends to c, at its new index"
        );
        assert!(l.needs_restart.is_empty(), "{:?}", l.needs_restart);
        // Laid out again over itself, nothing moves.
        let again = lay_out(&l.config, &new, &[]);
        let names: Vec<&str> = again.config.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn settings_that_need_a_restart_keep_their_old_value_and_are_named() {
        let old = cfg(&[("a", &["127.0.0.1:1"])], &[("x", "a")], 2);
        let new = cfg(&[("a", &["127.0.0.1:1"])], &[("x", "a")], 3);
        let l = lay_out(&old, &new, &[]);
        assert_eq!(l.config.runtime.workers, 2);
        assert_eq!(l.needs_restart, ["runtime.workers"]);
        let epoll = cfg(&[("a", &["127.0.0.1:1"])], &[("x", "a")], 2);
        let mut epoll = epoll;
        epoll.runtime.io = crate::config::IoMode::Epoll;
        let l = lay_out(&old, &epoll, &[]);
        assert_eq!(l.config.runtime.io, old.runtime.io);
        assert_eq!(l.needs_restart, ["runtime.io"]);
    }

    #[test]
    fn listeners_removed_stay_in_place_and_added_ones_come_after() {
        let old = cfg(&[("a", &["127.0.0.1:1"])], &[("x", "a"), ("y", "a")], 2);
        let new = cfg(&[("a", &["127.0.0.1:1"])], &[("y", "a"), ("z", "a")], 2);
        let l = lay_out(&old, &new, &[]);
        let names: Vec<&str> = l.config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!((l.removed, l.added), (vec![0], vec![2]));
        // Once x is closed, x coming back is a new listener at a new index.
        let back = cfg(
            &[("a", &["127.0.0.1:1"])],
            &[("x", "a"), ("y", "a"), ("z", "a")],
            2,
        );
        let again = lay_out(&l.config, &back, &[true, false, false]);
        assert_eq!((again.removed, again.added), (vec![], vec![3]));
        assert!(again.needs_restart.is_empty(), "{:?}", again.needs_restart);
    }

    #[test]
    fn a_listener_whose_bind_changes_is_closed_in_place_and_bound_again_after() {
        let old = cfg(&[("a", &["127.0.0.1:1"])], &[("x", "a"), ("y", "a")], 2);
        let mut new = old.clone();
        new.listeners[0].bind = "127.0.0.2:0".parse().unwrap();
        let l = lay_out(&old, &new, &[]);
        let names: Vec<&str> = l.config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["x", "y", "x"]);
        assert_eq!((l.removed, l.added), (vec![0], vec![2]));
        assert_eq!(l.config.listeners[2].bind, new.listeners[0].bind);
        assert!(l.needs_restart.is_empty(), "{:?}", l.needs_restart);
    }

    #[test]
    fn routing_tables_follow_their_listener_with_pools_at_their_slots() {
        let text = |pools: &[&str], route_pool: &str| {
            let mut t = format!(
                "[[listener]]\nname = \"x\"\nbind = \"127.0.0.1:0\"\npool = \"{}\"\n\
                 [[listener.route]]\npath_prefix = \"/v1/embeddings\"\npool = \"{route_pool}\"\n",
                pools[0]
            );
            for (i, name) in pools.iter().enumerate() {
                t += &format!(
                    "[[pool]]\nname = \"{name}\"\n[[pool.backend]]\naddr = \"127.0.0.1:{}\"\n",
                    i + 1
                );
            }
            crate::config::parse(&t, "t.toml").unwrap()
        };
        let old = text(&["a", "b"], "b");
        assert_eq!(old.listener_routes(0).rules()[0].pool, 1);
        // The new file puts "embed" first and drops "b": embed is appended at slot 2.
        let new = text(&["embed", "a"], "embed");
        let l = lay_out(&old, &new, &[]);
        let routes = l.config.listener_routes(0);
        assert_eq!(
            routes.default_pool(),
            2,
            "the listener's pool is embed, at slot 2"
        );
        assert_eq!(routes.rules()[0].pool, 2);
        assert_eq!(l.config.pools[2].name, "embed");
        assert_eq!(l.config.routes.len(), l.config.listeners.len());
    }
}
