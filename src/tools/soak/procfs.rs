//! What the soak reads about the ringlb process from /proc: resident memory, open descriptors,
//! CPU time. Must never guess: a value it cannot read is an error, not a zero.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use super::error::SoakError;

/// Clock ticks per second of /proc/PID/stat times: USER_HZ, which Linux fixes at 100 on every
/// mainstream architecture whatever the kernel's own HZ.
pub const USER_HZ: f64 = 100.0;

/// One reading of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: u64,
}

fn read(pid: u32, what: &'static str) -> Result<String, SoakError> {
    fs::read_to_string(format!("/proc/{pid}/{what}")).map_err(|source| SoakError::Proc {
        pid,
        what,
        source,
    })
}

fn unparsable(pid: u32, what: &'static str) -> SoakError {
    SoakError::Proc {
        pid,
        what,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected format"),
    }
}

pub fn usage(pid: u32) -> Result<Usage, SoakError> {
    let status = read(pid, "status")?;
    let rss_kib = parse_vm_rss(&status).ok_or_else(|| unparsable(pid, "status"))?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|source| SoakError::Proc {
            pid,
            what: "fd",
            source,
        })?
        .count() as u64;
    Ok(Usage { rss_kib, fds })
}

/// User + system CPU ticks of every thread of the process so far.
pub fn cpu_ticks(pid: u32) -> Result<u64, SoakError> {
    let stat = read(pid, "stat")?;
    parse_stat_ticks(&stat).ok_or_else(|| unparsable(pid, "stat"))
}

/// ringlb's TCP sockets by side and state, e.g. `client CLOSE_WAIT` (accepted on the listen
/// port) or `backend ESTABLISHED` (to a backend port): what a descriptor leak is made of.
pub fn socket_states(
    pid: u32,
    listen_port: u16,
    backend_ports: &[u16],
) -> Result<BTreeMap<String, u64>, SoakError> {
    let dir = fs::read_dir(format!("/proc/{pid}/fd")).map_err(|source| SoakError::Proc {
        pid,
        what: "fd",
        source,
    })?;
    let inodes: HashSet<u64> = dir
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let table = fs::read_to_string("/proc/net/tcp").map_err(|source| SoakError::Proc {
        pid,
        what: "net/tcp",
        source,
    })?;
    Ok(count_states(&table, &inodes, listen_port, backend_ports))
}

const TCP_STATES: [&str; 12] = [
    "?",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

fn count_states(
    table: &str,
    inodes: &HashSet<u64>,
    listen_port: u16,
    backend_ports: &[u16],
) -> BTreeMap<String, u64> {
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    let mut out = BTreeMap::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(st), Some(inode)) =
            (f.get(1), f.get(2), f.get(3), f.get(9))
        else {
            continue;
        };
        if !inode.parse().is_ok_and(|i: u64| inodes.contains(&i)) {
            continue;
        }
        let state = usize::from_str_radix(st, 16)
            .ok()
            .and_then(|s| TCP_STATES.get(s))
            .unwrap_or(&"?");
        let side = match (port(local), port(remote)) {
            (Some(l), _) if l == listen_port => {
                if *state == "LISTEN" {
                    "listener"
                } else {
                    "client"
                }
            }
            (_, Some(r)) if backend_ports.contains(&r) => "backend",
            _ => "other",
        };
        *out.entry(format!("{side} {state}")).or_default() += 1;
    }
    out
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the `(comm)` field, which
/// may itself contain spaces and parentheses.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_tricky_comm() {
        let stat = "4242 (ring lb) (x)) S 1 4242 4242 0 -1 4194560 1084 0 0 0 37 12 0 0 20 0 3";
        assert_eq!(parse_stat_ticks(stat), Some(49));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tringlb\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn sockets_are_counted_by_side_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1
   1: 0100007F:1F90 0100007F:C350 08 00000000:00000000 00:00000000 00000000     0        0 101 1
   2: 0100007F:C351 0100007F:2329 01 00000000:00000000 00:00000000 00000000     0        0 102 1
   3: 0100007F:C352 0100007F:2329 01 00000000:00000000 00:00000000 00000000     0        0 999 1
";
        let inodes = [100, 101, 102].into_iter().collect();
        let got = count_states(table, &inodes, 0x1F90, &[0x2329]);
        let want: BTreeMap<String, u64> = [
            ("listener LISTEN", 1),
            ("client CLOSE_WAIT", 1),
            ("backend ESTABLISHED", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        let u = usage(me).unwrap();
        assert!(u.rss_kib > 0 && u.fds >= 3);
        cpu_ticks(me).unwrap();
    }
}
